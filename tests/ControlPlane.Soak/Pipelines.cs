using System.Globalization;
using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Soak;

/// <summary>
/// What the driver submitted and what it must end as: the run's state, each step's allowed final states, how each gate is
/// decided, and when (if ever) the driver cancels the run.
/// </summary>
internal sealed record Plan(
    string Kind,
    RunSpec Spec,
    RunState ExpectedRun,
    IReadOnlyDictionary<string, StepState[]> ExpectedSteps,
    IReadOnlyDictionary<string, bool> Gates,
    TimeSpan? CancelAfter);

/// <summary>
/// The pipeline kinds of the mix. Every task step is a shell step that carries the soak's marker in its command line,
/// writes "run=R step=S attempt=A" (then details) as its output, reports usage against the run's budget, and appends a
/// line to the ledger once it ran to its end ("run step attempt pid epoch-seconds work-dir"). Every output is kept, so
/// the store can be asked for each at the end.
/// </summary>
internal sealed class Pipelines(string soakId, TimeSpan? retention = null)
{
    public const string Fanout = "fanout";
    public const string Chain = "chain";
    public const string Checkpoint = "checkpoint";
    public const string Flaky = "flaky";
    public const string Failing = "failing";
    public const string Gate = "gate";
    public const string GateReject = "gate-reject";
    public const string Cancel = "cancel";

    /// <summary>The queue checkpointing steps use; its cap is set at start.</summary>
    public const string BatchQueue = "batch";

    public const int BatchQueueCap = 3;

    /// <summary>The concurrency key checkpointing steps share across runs; its cap is set at start.</summary>
    public const string GpuKey = "soak-gpu";

    public const int GpuKeyCap = 2;

    /// <summary>Each kind and its weight in the mix.</summary>
    public static readonly IReadOnlyList<(string Kind, int Weight)> Mix =
    [
        (Fanout, 3), (Chain, 2), (Checkpoint, 2), (Flaky, 2), (Failing, 1), (Gate, 2), (GateReject, 1), (Cancel, 1),
    ];

    private static readonly StepState[] Succeeded = [StepState.Succeeded];

    /// <summary>The marker every step command starts with, found again in /proc/PID/cmdline.</summary>
    public string Marker => $"cp-soak-{soakId}";

    public static string PickKind(Random random)
    {
        var roll = random.Next(Mix.Sum(m => m.Weight));
        foreach (var (kind, weight) in Mix)
        {
            if ((roll -= weight) < 0)
            {
                return kind;
            }
        }

        return Mix[^1].Kind;
    }

    public Plan Build(string kind, int number, Random random)
    {
        var spec = new RunSpec
        {
            Name = $"soak-{kind}",
            Labels = { ["soak"] = soakId, ["kind"] = kind, ["number"] = number.ToString(CultureInfo.InvariantCulture) },
            Budget = { ["cpu_seconds"] = 1000 },
            Retention = retention is { } kept ? Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(kept) : null,
        };
        var expected = new Dictionary<string, StepState[]>(StringComparer.Ordinal);
        var gates = new Dictionary<string, bool>(StringComparer.Ordinal);
        var run = RunState.Succeeded;
        TimeSpan? cancelAfter = null;

        StepSpec Add(StepSpec step, params StepState[] allowed)
        {
            spec.Steps.Add(step);
            expected[step.Id] = allowed.Length == 0 ? Succeeded : allowed;
            return step;
        }

        switch (kind)
        {
            case Fanout:
            {
                var width = random.Next(3, 7);
                spec.Concurrency = 3;
                Add(Shell("root", Sleep(random) + Finish()));
                var parts = Enumerable.Range(1, width).Select(i => $"part-{i}").ToList();
                foreach (var part in parts)
                {
                    Add(Shell(part, CheckInputs(1) + Sleep(random) + Finish(), "root"));
                }

                Add(Shell("join", CheckInputs(width) + Finish(), [.. parts]));
                break;
            }

            case Chain:
            {
                var length = random.Next(3, 7);
                for (var i = 1; i <= length; i++)
                {
                    Add(i == 1 ? Shell("s1", Sleep(random) + Finish()) : Shell($"s{i}", CheckInputs(1) + Sleep(random) + Finish(), $"s{i - 1}"));
                }

                break;
            }

            case Checkpoint:
            {
                var count = random.Next(1, 3);
                var ids = new List<string>();
                for (var i = 1; i <= count; i++)
                {
                    var step = Shell($"batches-{i}", Batches(random.Next(6, 11), random.Next(5, 11) / 10.0));
                    step.Queue = BatchQueue;
                    step.ConcurrencyKey = GpuKey;
                    step.Estimate["cpu_seconds"] = 2;
                    Add(step);
                    ids.Add(step.Id);
                }

                Add(Shell("report", CheckInputs(count) + Finish(), [.. ids]));
                break;
            }

            case Flaky:
                Add(Shell("prep", Sleep(random) + Finish()));
                Add(Shell("flaky-1", CheckInputs(1) + FailOnce() + Sleep(random) + Finish(), "prep"));
                Add(Shell("flaky-2", CheckInputs(1) + FailOnce() + Sleep(random) + Finish(), "prep"));
                Add(Shell("done", CheckInputs(2) + Finish(), "flaky-1", "flaky-2"));
                break;

            case Failing:
            {
                run = RunState.Failed;
                Add(Shell("setup", Sleep(random) + Finish()));
                var fail = Add(Shell("fail", "echo 'failing for good on purpose' >&2; exit 7", "setup"), StepState.Failed);
                fail.Retry = new RetryPolicy { MaxAttempts = 3, Backoff = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(100)), MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(500)) };
                Add(Shell("after", Finish(), "fail"), StepState.Skipped);
                var notify = Add(Shell("notify", Finish(), "fail"));
                notify.RunIf = RunIf.OnFailure;
                var cleanup = Add(Shell("cleanup", Finish(), "after"));
                cleanup.RunIf = RunIf.Always;
                break;
            }

            case Gate:
            case GateReject:
            {
                var approve = kind == Gate;
                run = approve ? RunState.Succeeded : RunState.Failed;
                Add(Shell("build", Sleep(random) + Finish()));
                Add(new StepSpec { Id = "approve", Kind = StepKind.Gate, Needs = { "build" } }, approve ? StepState.Succeeded : StepState.Failed);
                Add(Shell("publish", Sleep(random) + Finish(), "approve"), approve ? StepState.Succeeded : StepState.Skipped);
                gates["approve"] = approve;
                break;
            }

            case Cancel:
            {
                run = RunState.Cancelled;
                cancelAfter = TimeSpan.FromMilliseconds(random.Next(1500, 5000));
                Add(Shell("prep", Sleep(random) + Finish()), StepState.Succeeded, StepState.Cancelled);
                foreach (var id in new[] { "long-1", "long-2" })
                {
                    var step = Add(Shell(id, Batches(60, 1), "prep"), StepState.Cancelled, StepState.Skipped);
                    step.Timeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(120));
                }

                break;
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown pipeline kind");
        }

        return new Plan(kind, spec, run, expected, gates, cancelAfter);
    }

    /// <summary>Parses "run=R step=S attempt=A ..." back; null when the output does not have that form.</summary>
    public static (string Run, string Step, int Attempt)? ParseOutput(string output)
    {
        var fields = output.Split(' ');
        if (fields.Length < 3 || !fields[0].StartsWith("run=", StringComparison.Ordinal) || !fields[1].StartsWith("step=", StringComparison.Ordinal)
            || !fields[2].StartsWith("attempt=", StringComparison.Ordinal)
            || !int.TryParse(fields[2]["attempt=".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var attempt))
        {
            return null;
        }

        return (fields[0]["run=".Length..], fields[1]["step=".Length..], attempt);
    }

    private StepSpec Shell(string id, string script, params string[] needs)
    {
        var step = new StepSpec
        {
            Id = id,
            Framework = "shell",
            Command = $": {Marker}; {script}",
            KeepOutput = true,
            Timeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(90)),
            Retry = new RetryPolicy
            {
                MaxAttempts = 10,
                Backoff = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(200)),
                BackoffMultiplier = 2,
                MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(2)),
            },
            Estimate = { ["cpu_seconds"] = 1 },
        };
        step.Needs.AddRange(needs);
        return step;
    }

    private static string Sleep(Random random) => $"sleep {(random.Next(1, 16) / 10.0).ToString("0.0", CultureInfo.InvariantCulture)}; ";

    // Every input must be the output of the step it is named after, of this run.
    private static string CheckInputs(int count) =>
        "n=0; for f in \"$CP_INPUTS_DIR\"/*; do [ -e \"$f\" ] || continue; n=$((n+1)); s=${f##*/}; " +
        "case \"$(cat \"$f\")\" in \"run=$CP_RUN_ID step=$s attempt=\"*) ;; *) echo \"input $s is not the output of $s: $(head -c 200 \"$f\")\" >&2; exit 3;; esac; done; " +
        $"[ \"$n\" -eq {count} ] || {{ echo \"expected {count} inputs, found $n\" >&2; exit 3; }}; ";

    // Fails the first time the step runs (a marker file outside the work directory remembers it), then succeeds.
    private static string FailOnce() =>
        "m=\"$SOAK_DIR/flaky/$CP_RUN_ID.$CP_STEP_ID\"; if [ ! -e \"$m\" ]; then : > \"$m\"; echo 'failing once on purpose' >&2; exit 1; fi; ";

    // N batches of D seconds, a checkpoint after each; a later attempt resumes after the last checkpointed batch.
    private static string Batches(int count, double seconds) =>
        "i=0; if [ -n \"${CP_CHECKPOINT_FILE:-}\" ]; then i=$(cat \"$CP_CHECKPOINT_FILE\"); echo \"resuming after batch $i\"; fi; from=$i; " +
        $"while [ \"$i\" -lt {count} ]; do sleep {seconds.ToString("0.0", CultureInfo.InvariantCulture)}; i=$((i+1)); echo \"$i\" > \"$CP_WORK_DIR/ck\"; " +
        $"echo \"::cp checkpoint $CP_WORK_DIR/ck\"; echo \"::cp progress $((i*100/{count})) batch $i\"; done; " +
        Finish(" from=$from");

    private static string Finish(string detail = "") =>
        $"printf 'run=%s step=%s attempt=%s%s' \"$CP_RUN_ID\" \"$CP_STEP_ID\" \"$CP_ATTEMPT\" \"{detail}\" > \"$CP_OUTPUT_FILE\"; " +
        "echo '::cp usage cpu_seconds=0.5'; " +
        "echo \"$CP_RUN_ID $CP_STEP_ID $CP_ATTEMPT $$ $(date +%s.%N) $CP_WORK_DIR\" >> \"$SOAK_DIR/ledger\"";
}
