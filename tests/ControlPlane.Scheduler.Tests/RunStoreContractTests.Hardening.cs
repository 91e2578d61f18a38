using ControlPlane.V1;
using CsCheck;
using Google.Protobuf;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

// What an agent sends can not break a run: extreme numbers, huge strings, odd encodings and large batches.
public abstract partial class RunStoreContractTests
{
    private const int Many = 10_000;

    /// <summary>Reports about step "a" that no agent should send, each applied in one batch between good reports about "b".</summary>
    public static TheoryData<string> ExtremeReports() =>
    [
        "progress-nan", "progress-inf", "progress-neg-inf", "usage-nan", "usage-inf", "usage-overflow", "usage-negative",
        "usage-bad-unit", "failed-usage-nan", "log-lone-surrogate", "error-lone-surrogate", "huge-message", "huge-log",
    ];

    [Theory]
    [MemberData(nameof(ExtremeReports))]
    public async Task Report_ExtremeValues_BatchPartnersAppliedAndRunStaysUsable(string kind)
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a"), Shell("b"), Shell("c")), null)).Run;
        await Connect("agent-1", slots: 3);
        var claimed = await Claim("agent-1", 3);
        var a = claimed.Single(x => x.StepId == "a");
        var b = claimed.Single(x => x.StepId == "b");
        var c = claimed.Single(x => x.StepId == "c");
        List<AttemptReport> bad = kind switch
        {
            "progress-nan" => [ProgressOf(a, double.NaN)],
            "progress-inf" => [ProgressOf(a, double.PositiveInfinity)],
            "progress-neg-inf" => [ProgressOf(a, double.NegativeInfinity)],
            "usage-nan" => [Completed(a, ByteString.Empty, new() { ["cpu"] = double.NaN })],
            "usage-inf" => [Completed(a, ByteString.Empty, new() { ["cpu"] = double.PositiveInfinity })],
            // Each amount is finite; their sum is not.
            "usage-overflow" => [Completed(a, ByteString.Empty, new() { ["cpu"] = 1e308 }), Completed(c, ByteString.Empty, new() { ["cpu"] = 1e308 })],
            "usage-negative" => [Completed(a, ByteString.Empty, new() { ["cpu"] = -5 })],
            "usage-bad-unit" => [Completed(a, ByteString.Empty, new() { [new string('u', 5000)] = 1 })],
            "failed-usage-nan" => [new AttemptReport(Ref(a), new ConnectRequest { StepFailed = new StepFailed { FencingToken = a.FencingToken, Error = "x", Usage = { ["cpu"] = double.NaN } } })],
            "log-lone-surrogate" => [LogOf(a, "broken \ud800 line", "\udc00")],
            "error-lone-surrogate" => [Failed(a, "bad \ud800 error", permanent: true)],
            "huge-message" => [ProgressOf(a, 50, new string('m', 2_000_000))],
            "huge-log" => [LogOf(a, Enumerable.Range(0, 100_000).Select(i => "line " + i).ToArray())],
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        var started = new AttemptReport(Ref(b), new ConnectRequest { StepStarted = new StepStarted { FencingToken = b.FencingToken } });

        var outcomes = await Store.ReportAsync([started, .. bad, Completed(b, ByteString.CopyFromUtf8("from-b"), new() { ["cpu"] = 1 })]);

        Assert.All(outcomes, o => Assert.Equal(ReportOutcome.Accepted, o));
        var after = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(StepState.Succeeded, StepOf(after, "b").State);
        Assert.Equal("from-b", (await Store.GetStepOutputAsync(run.Id, "b"))!.Data.ToStringUtf8());
        Assert.All(after.Steps, s => Assert.InRange(s.Progress, 0, 100));
        Assert.All(after.BudgetUsed.Concat(after.Steps.SelectMany(s => s.Usage)), u => Assert.True(double.IsFinite(u.Value) && u.Value >= 0, $"{u.Key} = {u.Value}"));
        Assert.All(after.Steps, s => Assert.True(s.Error.Length <= 8192 && s.ProgressMessage.Length <= 8192, $"{s.Id}: {s.Error.Length}/{s.ProgressMessage.Length} characters"));
        await AssertSettlesAsync(run.Id);
    }

    [Fact]
    public async Task Report_CompletionWithNonFiniteUsage_FailsTheStepNamingTheUnit()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a").With(s => s.Retry = new RetryPolicy { MaxAttempts = 3 })), null)).Run;
        await Connect("agent-1", slots: 1);
        var a = Assert.Single(await Claim("agent-1", 1));

        Assert.Equal(ReportOutcome.Accepted, await Complete(a, "out", usage: new() { ["cpu"] = double.NaN, ["mem"] = 2 }));

        var step = StepOf((await Store.GetRunAsync(run.Id))!, "a");
        Assert.Equal(StepState.Failed, step.State);
        Assert.Contains("usage[cpu]", step.Error, StringComparison.Ordinal);
        Assert.Contains("NaN", step.Error, StringComparison.Ordinal);
        await AssertNoLeaksAsync();
    }

    [Fact]
    public async Task Report_LongStrings_TruncatedWithMarker()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        await Connect("agent-1", slots: 1);
        var a = Assert.Single(await Claim("agent-1", 1));

        await Store.ReportAsync([ProgressOf(a, 10, new string('m', 100_000)), LogOf(a, [.. Enumerable.Repeat("l", 5000), new string('x', 100_000)])]);
        await Fail(a, new string('e', 100_000), permanent: true);

        var done = (await Store.GetRunAsync(run.Id))!;
        var step = StepOf(done, "a");
        Assert.EndsWith("characters truncated]", step.Error, StringComparison.Ordinal);
        Assert.True(step.Error.Length < 10_000);
        var log = (await ReadAllEventsAsync(run.Id)).Single(e => e.StepLogged is not null).StepLogged;
        Assert.True(log.Lines.Count <= 1001, $"{log.Lines.Count} lines");
        Assert.Contains(log.Lines, l => l.Contains("lines dropped", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SubmitRun_BudgetOrEstimateBeyondFiniteRange_RefusedAsViolations()
    {
        var spec = Run(Shell("a").With(s => s.Estimate["cpu"] = 1e308), Shell("b").With(s => s.Estimate["usd"] = double.PositiveInfinity))
            .With(s => { s.Budget["cpu"] = double.PositiveInfinity; s.Budget["usd"] = 2e15; });

        var ex = await Assert.ThrowsAsync<RunSpecValidationException>(() => Store.SubmitRunAsync(spec, null));

        Assert.Equal(
            ["budget[cpu]", "budget[usd]", "steps[0].estimate[cpu]", "steps[1].estimate[usd]"],
            ex.Violations.Select(v => v.Field).Order(StringComparer.Ordinal));
        Assert.All(ex.Violations, v => Assert.Contains("at most 1e15", v.Description, StringComparison.Ordinal));
        Assert.Empty((await Store.ListRunsAsync(new RunQuery())).Runs);
    }

    // ---- Lua's argument limit: thousands of attempts in one call ---------------------------------

    [Fact]
    public async Task ConnectAndRenew_TenThousandAttemptsReannounced_AllKept()
    {
        await using var store = await CreateStoreAsync(ManyOptions(), Time);
        var (run, claimed) = await ClaimManyAsync(store);
        var refs = claimed.Select(Ref).ToList();

        var session = await store.ConnectAgentAsync(new AgentRegistration("agent-1", "h", ["shell"], [], new Dictionary<string, string>(), Many, [], refs));
        Time.Advance(Options.LeaseDuration / 2);
        var stop = await store.RenewLeasesAsync("agent-1", refs);
        Time.Advance(Options.LeaseDuration / 2 + TimeSpan.FromSeconds(1));
        var reaped = await store.RunMaintenanceAsync(Many);

        Assert.Empty(session.RevokedTokens);
        Assert.Empty(stop);
        Assert.Equal(0, reaped.LeasesExpired);
        Assert.All((await store.GetRunAsync(run))!.Steps, s => Assert.Equal(StepState.Assigned, s.State));
    }

    [Fact]
    public async Task Report_BatchOfTenThousand_AllApplied()
    {
        await using var store = await CreateStoreAsync(ManyOptions(), Time);
        var (run, claimed) = await ClaimManyAsync(store);

        var outcomes = await store.ReportAsync(claimed.Select(a => Completed(a, ByteString.Empty)).ToList());

        Assert.Equal(Many, outcomes.Count(o => o == ReportOutcome.Accepted));
        Assert.Equal(RunState.Succeeded, (await store.GetRunAsync(run))!.State);
        Assert.Equal(0, (await store.ListAgentsAsync()).Single().UsedSlots);
    }

    [Fact]
    public async Task Maintenance_TenThousandExpiredLeases_AllRequeued()
    {
        await using var store = await CreateStoreAsync(ManyOptions(), Time);
        var (run, _) = await ClaimManyAsync(store);
        Time.Advance(Options.LeaseDuration + TimeSpan.FromSeconds(1));

        var reaped = await store.RunMaintenanceAsync(Many);

        Assert.Equal(Many, reaped.LeasesExpired);
        Assert.All((await store.GetRunAsync(run))!.Steps, s => Assert.Equal(StepState.Ready, s.State));
        Assert.Equal(0, (await store.ListAgentsAsync()).Single().UsedSlots);
    }

    [Fact]
    public async Task ConnectAgent_MoreSlotsOrAttemptsThanTheCap_RefusedNamingTheField()
    {
        var slots = await Assert.ThrowsAsync<RunStoreException>(() => Connect("agent-1", slots: AgentRegistration.MaxSlots + 1));
        var attempts = await Assert.ThrowsAsync<RunStoreException>(() => Connect(
            "agent-1", slots: 1, running: Enumerable.Range(1, AgentRegistration.MaxSlots + 1).Select(i => new AttemptRef("r", "s", i)).ToList()));

        Assert.Equal(RunStoreError.InvalidArgument, slots.Error);
        Assert.Equal("slots", slots.Field);
        Assert.Equal(RunStoreError.InvalidArgument, attempts.Error);
        Assert.Equal("running_attempts", attempts.Field);
    }

    // ---- Property: random report sequences with extreme values --------------------------------------

    private static readonly double[] ExtremeNumbers =
        [double.NaN, double.PositiveInfinity, double.NegativeInfinity, 1e308, -1e308, -0.0, 0, 1e15, 1e16, double.Epsilon, 50.5, -1, 100, 101];

    private static readonly string[] ExtremeStrings =
        ["", "ok", "\ud800", "a\udc00b", "\0nul", "😀", "\"]}{\\", "%d%s%n", new string('x', 100_000), "ü\u2028\u2029"];

    /// <summary>kind, step index (3: no such step), token (0 current, 1 stale, 2 unknown), a number, a string.</summary>
    private static readonly Gen<(int Kind, int Step, int Token, double Number, string Text)> ReportGen =
        Gen.Select(Gen.Int[0, 6], Gen.Int[0, 3], Gen.Int[0, 2], Gen.OneOf(ExtremeNumbers), Gen.OneOf(ExtremeStrings));

    [Fact]
    public async Task Property_RandomReportsWithExtremeValues_NoStoreErrorAndRunsSettle()
    {
        await Connect("agent-p", slots: 4);
        await ReportGen.Array[1, 12].Array[1, 4].SampleAsync(async batches =>
        {
            var run = (await Store.SubmitRunAsync(
                Run(Shell("a").With(s => s.Estimate["cpu"] = 1), Shell("b"), Shell("c", "a")).With(s => s.Budget["cpu"] = 1e6), null)).Run;
            foreach (var batch in batches)
            {
                var live = (await Claim("agent-p", 4)).Concat(Active(run.Id)).ToList();
                _active[run.Id] = live;
                var reports = batch.Select(r => Extreme(run.Id, live, r)).ToList();
                if (reports.Any(r => r.Report.MessageCase == ConnectRequest.MessageOneofCase.None))
                {
                    // The one documented refusal: a report that carries nothing refuses the call before anything is applied.
                    var seq = (await Store.GetRunAsync(run.Id))!.LastEventSeq;
                    var refused = await Assert.ThrowsAsync<RunStoreException>(() => Store.ReportAsync(reports));
                    Assert.Equal(RunStoreError.InvalidArgument, refused.Error);
                    Assert.Equal(seq, (await Store.GetRunAsync(run.Id))!.LastEventSeq);
                }
                else
                {
                    Assert.Equal(reports.Count, (await Store.ReportAsync(reports)).Count);
                }

                var current = (await Store.GetRunAsync(run.Id))!;
                _active[run.Id] = live.Where(x => StepOf(current, x.StepId) is { } s
                    && s.Attempt == x.Attempt && s.State is StepState.Assigned or StepState.Running).ToList();
            }

            var now = (await Store.GetRunAsync(run.Id))!;
            Assert.All(now.Steps, s => Assert.InRange(s.Progress, 0, 100));
            Assert.All(now.BudgetUsed.Concat(now.BudgetReserved), u => Assert.True(double.IsFinite(u.Value), $"{u.Key} = {u.Value}"));
            await AssertSettlesAsync(run.Id);
            _active.Remove(run.Id);
        }, iter: 100, threads: 1);
    }

    private readonly Dictionary<string, List<Assignment>> _active = new(StringComparer.Ordinal);

    private IEnumerable<Assignment> Active(string runId) => _active.GetValueOrDefault(runId) ?? [];

    private static AttemptReport Extreme(string runId, List<Assignment> live, (int Kind, int Step, int Token, double Number, string Text) r)
    {
        var id = r.Step < 3 ? ((char)('a' + r.Step)).ToString() : "no-such-step";
        var current = live.FirstOrDefault(x => x.StepId == id);
        var token = r.Token switch
        {
            0 when current is not null => current.FencingToken,
            1 when current is not null => current.FencingToken - 1,
            _ => 987_654_321,
        };
        var message = r.Kind switch
        {
            0 => new ConnectRequest { StepStarted = new StepStarted { FencingToken = token } },
            1 => new ConnectRequest { StepProgress = new StepProgress { FencingToken = token, Percent = r.Number, Message = r.Text } },
            2 => new ConnectRequest { StepCheckpoint = new StepCheckpoint { FencingToken = token, Data = ByteString.CopyFromUtf8(r.Text) } },
            3 => new ConnectRequest { StepLog = new StepLog { FencingToken = token, Stream = (LogStream)(int)Math.Clamp(r.Number, -5, 5), Lines = { r.Text, r.Text } } },
            4 => new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = token, Output = ByteString.CopyFromUtf8(r.Text), OutputUri = r.Text, Usage = { ["cpu"] = r.Number } } },
            5 => new ConnectRequest { StepFailed = new StepFailed { FencingToken = token, Error = r.Text, Permanent = r.Number > 0, Usage = { [r.Text.Length is > 0 and < 60 ? "u" + r.Text.Length : "cpu"] = r.Number } } },
            _ => new ConnectRequest(),
        };
        return new AttemptReport(new AttemptRef(runId, id, token), message);
    }

    private RunStoreOptions ManyOptions() => new() { LeaseDuration = Options.LeaseDuration, LeaseExpiryAttempts = 3, ReportBatch = Many };

    /// <summary>One run of <see cref="Many"/> independent steps, every one claimed by one agent.</summary>
    private static async Task<(string Run, List<Assignment> Claimed)> ClaimManyAsync(IRunStore store)
    {
        var run = (await store.SubmitRunAsync(Run(Enumerable.Range(0, Many).Select(i => Shell("s" + i)).ToArray()), null)).Run;
        await store.ConnectAgentAsync(new AgentRegistration("agent-1", "h", ["shell"], [], new Dictionary<string, string>(), Many, [], []));
        var claimed = new List<Assignment>();
        while (claimed.Count < Many)
        {
            var batch = await store.ClaimAsync(new ClaimRequest("agent-1", Many));
            Assert.NotEmpty(batch);
            claimed.AddRange(batch);
        }

        return (run.Id, claimed);
    }

    private static AttemptReport ProgressOf(Assignment a, double percent, string message = "") =>
        new(Ref(a), new ConnectRequest { StepProgress = new StepProgress { FencingToken = a.FencingToken, Percent = percent, Message = message } });

    private static AttemptReport LogOf(Assignment a, params string[] lines) =>
        new(Ref(a), new ConnectRequest { StepLog = new StepLog { FencingToken = a.FencingToken, Stream = LogStream.Stdout, Lines = { lines } } });

    /// <summary>
    /// The run can still be cancelled and settles: every attempt it still holds ends by lease expiry, the run ends
    /// terminal, its events are numbered 1..n without gaps and every slot counter is back to 0.
    /// </summary>
    private async Task AssertSettlesAsync(string runId)
    {
        var run = (await Store.GetRunAsync(runId))!;
        if (run.State is not (RunState.Succeeded or RunState.Failed or RunState.Cancelled))
        {
            await Store.CancelRunAsync(runId, "settle");
        }

        Time.Advance(Options.LeaseDuration + TimeSpan.FromSeconds(1));
        await Store.RunMaintenanceAsync(100);
        var done = (await Store.GetRunAsync(runId))!;
        Assert.True(done.State is RunState.Succeeded or RunState.Failed or RunState.Cancelled, $"run is {done.State}");
        var events = await ReadAllEventsAsync(runId);
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Seq));
        Assert.Equal(done.LastEventSeq, events.Count);
        AssertHistoryFollowsTables(done);
        await AssertNoLeaksAsync();
    }
}
