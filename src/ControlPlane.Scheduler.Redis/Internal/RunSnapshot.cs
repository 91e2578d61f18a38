using System.Globalization;
using System.Text.Json;
using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;
using ControlPlane.Scheduler.Internal;

namespace ControlPlane.Scheduler.Redis.Internal;

/// <summary>Turns a run hash (fields as the scripts write them) and its event log into the Run message.</summary>
internal static class RunSnapshot
{
    public static Run Build(string runId, IReadOnlyDictionary<string, string> f, RunSpec spec, IReadOnlyList<RunEvent> events, BlockedContext? blocked)
    {
        var run = Summary(runId, f, spec);
        var steps = new Dictionary<string, Step>(StringComparer.Ordinal);
        foreach (var s in spec.Steps)
        {
            var step = BuildStep(s.Id, f);
            if (step.State == StepState.Ready && blocked is not null)
            {
                step.BlockedReason = blocked.Explain(run, spec, s, f);
            }

            steps[s.Id] = step;
            run.Steps.Add(step);
        }

        foreach (var e in events)
        {
            if (e.RunStateChanged is { } r)
            {
                run.History.Add(RunEvents.History(r.FromState, r.ToState, r.Reason, e.Time.ToDateTimeOffset()));
            }
            else if (e.StepStateChanged is { } s && steps.TryGetValue(s.StepId, out var step))
            {
                step.History.Add(RunEvents.History(s.FromState, s.ToState, s.Reason, e.Time.ToDateTimeOffset(), s.Attempt));
            }
        }

        return run;
    }

    /// <summary>A run without steps, as ListRuns returns it.</summary>
    public static Run Summary(string runId, IReadOnlyDictionary<string, string> f, RunSpec spec)
    {
        var run = new Run
        {
            Id = runId,
            Name = Get(f, "_name"),
            State = (RunState)Int(f, "_st"),
            Spec = spec,
            IdempotencyKey = Get(f, "_idem"),
            Error = Get(f, "_err"),
            LastEventSeq = Long(f, "_seq"),
            CreatedAt = Time(f, "_crt"),
            StartedAt = Time(f, "_sta"),
            FinishedAt = Time(f, "_fin"),
            TraceId = RunTrace.TraceIdOf(Get(f, "_tp")),
        };
        foreach (var (k, v) in StepMeta.ParseMap(Get(f, "_lbl")))
        {
            run.Labels[k] = v;
        }

        foreach (var (k, v) in StepMeta.ParseUnits(Get(f, "_res")))
        {
            run.BudgetReserved[k] = v;
        }

        foreach (var (k, v) in StepMeta.ParseUnits(Get(f, "_usd")))
        {
            run.BudgetUsed[k] = v;
        }

        return run;
    }

    private static Step BuildStep(string id, IReadOnlyDictionary<string, string> f)
    {
        var p = id + ":";
        var step = new Step
        {
            Id = id,
            State = (StepState)Int(f, p + "st"),
            Attempt = Int(f, p + "at"),
            AgentId = Get(f, p + "ag"),
            Progress = Double(f, p + "pg"),
            ProgressMessage = Get(f, p + "pm"),
            HasCheckpoint = f.ContainsKey(p + "ck"),
            OutputSize = Long(f, p + "os"),
            Error = Get(f, p + "er"),
            StartedAt = Time(f, p + "sa"),
            FinishedAt = Time(f, p + "fa"),
            DecidedBy = Get(f, p + "db"),
            DecisionComment = Get(f, p + "dc"),
            OutputDropped = Get(f, p + "od") == "1",
            LogLinesDropped = Long(f, p + "lx"),
            ProgressEventsDropped = Long(f, p + "px"),
        };
        foreach (var (k, v) in StepMeta.ParseUnits(Get(f, p + "us")))
        {
            step.Usage[k] = v;
        }

        return step;
    }

    public static string Get(IReadOnlyDictionary<string, string> f, string name) => f.TryGetValue(name, out var v) ? v : string.Empty;

    public static int Int(IReadOnlyDictionary<string, string> f, string name) => (int)Long(f, name);

    public static long Long(IReadOnlyDictionary<string, string> f, string name) =>
        f.TryGetValue(name, out var v) && v.Length > 0 ? (long)double.Parse(v, CultureInfo.InvariantCulture) : 0;

    public static double Double(IReadOnlyDictionary<string, string> f, string name) =>
        f.TryGetValue(name, out var v) && v.Length > 0 ? double.Parse(v, CultureInfo.InvariantCulture) : 0;

    private static Timestamp? Time(IReadOnlyDictionary<string, string> f, string name) =>
        f.TryGetValue(name, out var v) && v.Length > 0
            ? Timestamp.FromDateTimeOffset(DateTimeOffset.FromUnixTimeMilliseconds((long)double.Parse(v, CultureInfo.InvariantCulture)))
            : null;

    /// <summary>Meta fields a blocked-reason check needs, from the step's JSON meta.</summary>
    public static (string Queue, string Framework, string Handler, string Key, int Slots) MetaOf(IReadOnlyDictionary<string, string> f, string stepId)
    {
        using var doc = JsonDocument.Parse(Get(f, stepId + ":m"));
        var m = doc.RootElement;
        return (m.GetProperty("q").GetString()!, m.GetProperty("fw").GetString()!, m.GetProperty("h").GetString()!,
            m.GetProperty("k").GetString()!, m.GetProperty("sl").GetInt32());
    }
}
