using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;
using ControlPlane.Scheduler.Internal;

namespace ControlPlane.Scheduler.Tests;

/// <summary>
/// The behaviour every <see cref="IRunStore"/> must have. Each store runs the same tests through a
/// subclass; time moves only through <see cref="Time"/>.
/// </summary>
public abstract partial class RunStoreContractTests : IAsyncLifetime
{
    protected ManualTimeProvider Time { get; } = new();

    protected RunStoreOptions Options { get; } = new() { LeaseDuration = TimeSpan.FromSeconds(30), LeaseExpiryAttempts = 3 };

    protected IRunStore Store { get; private set; } = null!;

    protected abstract Task<IRunStore> CreateStoreAsync(RunStoreOptions options, TimeProvider time);

    public async Task InitializeAsync() => Store = await CreateStoreAsync(Options, Time);

    public async Task DisposeAsync()
    {
        foreach (var subscription in _subscriptions)
        {
            await subscription.DisposeAsync();
        }

        await Store.DisposeAsync();
    }

    // ---- Submit --------------------------------------------------------------------------------

    [Fact]
    public async Task SubmitRun_SameIdempotencyKey_ReturnsExistingRun()
    {
        var first = await Store.SubmitRunAsync(Run(Shell("a")), "key-1");
        var second = await Store.SubmitRunAsync(Run(Shell("a"), Shell("b")), "key-1");
        var other = await Store.SubmitRunAsync(Run(Shell("a")), "key-2");

        Assert.True(first.Created);
        Assert.False(second.Created);
        Assert.Equal(first.Run.Id, second.Run.Id);
        Assert.Single(second.Run.Steps);
        Assert.True(other.Created);
        Assert.NotEqual(first.Run.Id, other.Run.Id);
    }

    [Fact]
    public async Task SubmitRun_InvalidSpec_ThrowsWithEveryViolation()
    {
        var spec = Run(Shell("a", "missing"), Shell("a"), new StepSpec { Id = "c", Framework = "cobol" });

        var ex = await Assert.ThrowsAsync<RunSpecValidationException>(() => Store.SubmitRunAsync(spec, null));

        Assert.Contains(ex.Violations, v => v.Field == "steps[0].needs[0]");
        Assert.Contains(ex.Violations, v => v.Field == "steps[1].id");
        Assert.Contains(ex.Violations, v => v.Field == "steps[2].framework");
        Assert.Empty((await Store.ListRunsAsync(new RunQuery())).Runs);
    }

    [Fact]
    public async Task SubmitRun_ReturnsTheRunAsGetRunReadsItBack()
    {
        var plain = Run(Shell("a"), Shell("b").With(s => s.Queue = "gpu"), Shell("c", "a", "b"));
        var mixed = Run(
            Shell("a").With(s => s.Estimate["tokens"] = 5),
            Gate("g"),
            Shell("page", "a").With(s => s.RunIf = RunIf.OnFailure),
            Shell("after", "a", "g"))
            .With(s =>
            {
                s.Labels["team"] = "data";
                s.Budget["tokens"] = 100;
                s.Concurrency = 1;
            });

        // Without an agent (every READY step has a blocked reason), then with one that serves only some steps.
        var before = (await Store.SubmitRunAsync(plain, null)).Run;
        Assert.Equal(await Store.GetRunAsync(before.Id), before);
        await Connect("cpu-only", slots: 2, queues: ["default"], frameworks: ["shell"]);
        var after = (await Store.SubmitRunAsync(plain, null)).Run;
        Assert.Equal(await Store.GetRunAsync(after.Id), after);
        var other = (await Store.SubmitRunAsync(mixed, "mixed-1")).Run;
        Assert.Equal(await Store.GetRunAsync(other.Id), other);

        Assert.NotEqual(StepOf(before, "a").BlockedReason, StepOf(after, "a").BlockedReason);
    }

    [Fact]
    public async Task SubmitRun_Dag_RootsReadyOthersBlockedRunPending()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a"), Shell("b"), Shell("c", "a", "b"), Gate("g")), null)).Run;

        Assert.Equal(StepState.Ready, StepOf(run, "a").State);
        Assert.Equal(StepState.Ready, StepOf(run, "b").State);
        Assert.Equal(StepState.Blocked, StepOf(run, "c").State);
        Assert.Equal(StepState.WaitingApproval, StepOf(run, "g").State);
        Assert.Equal(RunState.Running, run.State);
        var fetched = await Store.GetRunAsync(run.Id);
        Assert.NotNull(fetched);
        Assert.Equal(4, fetched.Steps.Count);
        Assert.Null(await Store.GetRunAsync("no-such-run"));
    }

    [Fact]
    public async Task ListRuns_FilterByStateAndLabels_PagesNewestFirst()
    {
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var spec = Run(Shell("a")).With(s => s.Labels["team"] = i % 2 == 0 ? "even" : "odd");
            ids.Add((await Store.SubmitRunAsync(spec, null)).Run.Id);
            Time.Advance(TimeSpan.FromSeconds(1));
        }

        await Store.CancelRunAsync(ids[4], "not needed");

        var page1 = await Store.ListRunsAsync(new RunQuery(PageSize: 2));
        var page2 = await Store.ListRunsAsync(new RunQuery(PageSize: 2, PageToken: page1.NextPageToken));
        var page3 = await Store.ListRunsAsync(new RunQuery(PageSize: 2, PageToken: page2.NextPageToken));
        var even = await Store.ListRunsAsync(new RunQuery(Labels: new Dictionary<string, string> { ["team"] = "even" }));
        var cancelled = await Store.ListRunsAsync(new RunQuery(State: RunState.Cancelled));

        Assert.Equal(new[] { ids[4], ids[3], ids[2], ids[1], ids[0] }, page1.Runs.Concat(page2.Runs).Concat(page3.Runs).Select(r => r.Id));
        Assert.Null(page3.NextPageToken);
        Assert.All(page1.Runs, r => Assert.Empty(r.Steps));
        Assert.Equal(new[] { ids[4], ids[2], ids[0] }, even.Runs.Select(r => r.Id));
        Assert.Equal(ids[4], Assert.Single(cancelled.Runs).Id);
    }

    // ---- Claim and caps ------------------------------------------------------------------------

    [Fact]
    public async Task Claim_AgentSlots_NeverMoreThanFree()
    {
        await Store.SubmitRunAsync(Run(Shell("a"), Shell("b"), Shell("c"), Shell("big").With(s => s.Slots = 2)), null);
        await Connect("agent-1", slots: 2);

        var first = await Claim("agent-1", 10);
        var second = await Claim("agent-1", 10);

        Assert.Equal(2, first.Sum(a => a.Spec.Slots));
        Assert.Empty(second);
        await Complete(first[0]);
        var third = await Claim("agent-1", 10);
        Assert.Single(third);
        Assert.Equal(1, third[0].Spec.Slots);
        Assert.Equal(2, (await Store.ListAgentsAsync()).Single().UsedSlots);
    }

    [Fact]
    public async Task Claim_RunCap_LimitsStepsOfOneRun()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a"), Shell("b"), Shell("c")).With(s => s.Concurrency = 2), null)).Run;
        await Connect("agent-1", slots: 10);

        var claimed = await Claim("agent-1", 10);

        Assert.Equal(2, claimed.Count);
        var waiting = (await Store.GetRunAsync(run.Id))!.Steps.Single(s => s.State == StepState.Ready);
        Assert.Contains("run cap", waiting.BlockedReason, StringComparison.Ordinal);
        await Complete(claimed[0]);
        Assert.Single(await Claim("agent-1", 10));
    }

    [Fact]
    public async Task Claim_QueueCap_LimitsAcrossRuns()
    {
        await Store.SetLimitAsync(LimitKind.Queue, "default", 2);
        await Store.SubmitRunAsync(Run(Shell("a"), Shell("b")), null);
        var run2 = (await Store.SubmitRunAsync(Run(Shell("a"), Shell("b")), null)).Run;
        await Connect("agent-1", slots: 10);

        var claimed = await Claim("agent-1", 10);

        Assert.Equal(2, claimed.Count);
        Assert.Empty(await Claim("agent-1", 10));
        var waiting = (await Store.GetRunAsync(run2.Id))!.Steps.First(s => s.State == StepState.Ready);
        Assert.Contains("queue cap", waiting.BlockedReason, StringComparison.Ordinal);
        await Complete(claimed[0]);
        Assert.Single(await Claim("agent-1", 10));
        var stats = await Store.GetStatsAsync();
        Assert.Contains(stats.Slots, s => s is { Kind: "queue", Name: "default", Used: 2, Limit: 2 });
    }

    [Fact]
    public async Task Claim_ConcurrencyKeyCap_LimitsAcrossRuns()
    {
        await Store.SetLimitAsync(LimitKind.ConcurrencyKey, "gpu", 1);
        StepSpec Gpu(string id) => Shell(id).With(s => s.ConcurrencyKey = "gpu");
        await Store.SubmitRunAsync(Run(Gpu("a"), Shell("cpu")), null);
        var run2 = (await Store.SubmitRunAsync(Run(Gpu("a")), null)).Run;
        await Connect("agent-1", slots: 10);

        var claimed = await Claim("agent-1", 10);

        Assert.Equal(2, claimed.Count);
        Assert.Single(claimed, a => a.Spec.ConcurrencyKey == "gpu");
        var waiting = StepOf((await Store.GetRunAsync(run2.Id))!, "a");
        Assert.Equal(StepState.Ready, waiting.State);
        Assert.Contains("'gpu'", waiting.BlockedReason, StringComparison.Ordinal);
        await Complete(claimed.Single(a => a.Spec.ConcurrencyKey == "gpu"));
        var next = Assert.Single(await Claim("agent-1", 10));
        Assert.Equal(run2.Id, next.RunId);
    }

    [Fact]
    public async Task Claim_ParallelBranchesShareBudget_ReserveThenReconcile()
    {
        StepSpec Costly(string id) => Shell(id).With(s => s.Estimate["cpu_seconds"] = 60);
        var spec = Run(Costly("a"), Costly("b")).With(s => s.Budget["cpu_seconds"] = 100);
        var run = (await Store.SubmitRunAsync(spec, null)).Run;
        await Connect("agent-1", slots: 10);

        var first = Assert.Single(await Claim("agent-1", 10));
        var during = (await Store.GetRunAsync(run.Id))!;
        var waiting = during.Steps.Single(s => s.State == StepState.Ready);

        Assert.Equal(60, during.BudgetReserved["cpu_seconds"]);
        Assert.Contains("budget", waiting.BlockedReason, StringComparison.Ordinal);
        await Complete(first, usage: new() { ["cpu_seconds"] = 30 });
        var after = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(30, after.BudgetUsed["cpu_seconds"]);
        Assert.Equal(0, after.BudgetReserved.GetValueOrDefault("cpu_seconds"));
        var second = Assert.Single(await Claim("agent-1", 10));
        Assert.NotEqual(first.StepId, second.StepId);
    }

    [Fact]
    public async Task Claim_EstimateNeverFitsBudget_StepFailsQuotaExceededBeforeDispatch()
    {
        var spec = Run(Shell("a").With(s => s.Estimate["tokens"] = 500), Shell("after", "a"))
            .With(s => s.Budget["tokens"] = 100);
        var run = (await Store.SubmitRunAsync(spec, null)).Run;
        await Connect("agent-1", slots: 4);

        var claimed = await Claim("agent-1", 4);

        Assert.Empty(claimed);
        var done = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(StepState.Failed, StepOf(done, "a").State);
        Assert.Contains("QUOTA_EXCEEDED", StepOf(done, "a").Error, StringComparison.Ordinal);
        Assert.Equal(0, StepOf(done, "a").Attempt);
        Assert.Equal(StepState.Skipped, StepOf(done, "after").State);
        Assert.Equal(RunState.Failed, done.State);
    }

    [Fact]
    public async Task Claim_ManyRunsInOneQueue_RoundRobinByRun()
    {
        var big = (await Store.SubmitRunAsync(Named("big", Enumerable.Range(0, 10).Select(i => Shell($"s{i}")).ToArray()), null)).Run;
        Time.Advance(TimeSpan.FromSeconds(1));
        var small = (await Store.SubmitRunAsync(Named("small", Shell("x"), Shell("y")), null)).Run;
        await Connect("agent-1", slots: 100);

        var order = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            order.Add(Assert.Single(await Claim("agent-1", 1)).RunId);
        }

        Assert.Equal(new[] { big.Id, small.Id, big.Id, small.Id, big.Id, big.Id }, order);
    }

    [Fact]
    public async Task Claim_BatchAcrossRuns_InterleavesRunsThenPriority()
    {
        var runA = (await Store.SubmitRunAsync(Named("a", Shell("low"), Shell("high").With(s => s.Priority = 5), Shell("mid").With(s => s.Priority = 1)), null)).Run;
        var runB = (await Store.SubmitRunAsync(Named("b", Shell("only")), null)).Run;
        await Connect("agent-1", slots: 10);

        var claimed = await Claim("agent-1", 4);

        Assert.Equal(new[] { "high", "only", "mid", "low" }, claimed.Select(a => a.StepId));
        Assert.Equal(new[] { runA.Id, runB.Id, runA.Id, runA.Id }, claimed.Select(a => a.RunId));
    }

    [Fact]
    public async Task Claim_AgentLacksFrameworkOrQueue_ClaimsNothingAndReasonNamesIt()
    {
        var run = (await Store.SubmitRunAsync(Run(new StepSpec { Id = "h", Framework = "dotnet", Handler = "resize", Queue = "images" }), null)).Run;
        await Connect("shell-only", slots: 4, queues: ["images"], frameworks: ["shell"]);
        await Connect("wrong-queue", slots: 4, queues: ["other"], frameworks: ["dotnet"], handlers: ["resize"]);

        Assert.Empty(await Claim("shell-only", 4));
        Assert.Empty(await Claim("wrong-queue", 4));
        var step = StepOf((await Store.GetRunAsync(run.Id))!, "h");
        Assert.Contains("no connected agent serves queue 'images'", step.BlockedReason, StringComparison.Ordinal);
        Assert.Contains("'dotnet'", step.BlockedReason, StringComparison.Ordinal);

        await Connect("right", slots: 1, queues: ["images"], frameworks: ["dotnet"], handlers: ["resize"]);
        var a = Assert.Single(await Claim("right", 4));
        Assert.Equal("images", a.Spec.Queue);
    }

    [Fact]
    public async Task Claim_DrainedOrDisconnectedAgent_GetsNothing()
    {
        var signals = await Subscribe();
        await Store.SubmitRunAsync(Run(Shell("a")), null);
        await Connect("agent-1", slots: 4);
        var second = await Connect("agent-2", slots: 4);

        var drained = await Store.DrainAgentAsync("agent-1");
        await Store.DisconnectAgentAsync("agent-2", second.SessionId);

        Assert.Equal(AgentState.Draining, drained.State);
        Assert.Empty(await Claim("agent-1", 4));
        Assert.Empty(await Claim("agent-2", 4));
        await signals.WaitForAsync<AgentDrainRequested>(s => s.AgentId == "agent-1");
        var ex = await Assert.ThrowsAsync<RunStoreException>(() => Store.ClaimAsync(new ClaimRequest("nobody", 1)));
        Assert.Equal(RunStoreError.NotFound, ex.Error);
    }

    // ---- Completion, inputs, outputs ------------------------------------------------------------

    [Fact]
    public async Task Report_Completion_UnblocksChildrenPassesInputsAndFinishesRun()
    {
        var spec = Run(
            Shell("a").With(s => s.OutputType = "text/plain"),
            Shell("b"),
            Shell("c", "a", "b").With(s => s.InputType = "text/*"));
        var run = (await Store.SubmitRunAsync(spec, null)).Run;
        await Connect("agent-1", slots: 4);
        var roots = await Claim("agent-1", 4);

        await Store.ReportAsync([new AttemptReport(Ref(roots[0]), new ConnectRequest { StepStarted = new StepStarted { FencingToken = roots[0].FencingToken } })]);
        Assert.Equal(StepState.Running, StepOf((await Store.GetRunAsync(run.Id))!, roots[0].StepId).State);
        Assert.Equal(ReportOutcome.Accepted, await Complete(roots.Single(r => r.StepId == "a"), "from-a"));
        Assert.Equal(StepState.Blocked, StepOf((await Store.GetRunAsync(run.Id))!, "c").State);
        await Complete(roots.Single(r => r.StepId == "b"), "from-b");

        var c = Assert.Single(await Claim("agent-1", 4));
        Assert.Equal("c", c.StepId);
        Assert.Equal(1, c.Attempt);
        Assert.False(c.HasCheckpoint);
        Assert.Equal("from-a", c.Inputs.Single(i => i.StepId == "a").Data.ToStringUtf8());
        Assert.Equal("text/plain", c.Inputs.Single(i => i.StepId == "a").Type);
        Assert.Equal("from-b", c.Inputs.Single(i => i.StepId == "b").Data.ToStringUtf8());
        await Complete(c, "result");

        var done = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(RunState.Succeeded, done.State);
        Assert.All(done.Steps, s => Assert.Equal(StepState.Succeeded, s.State));
        Assert.NotNull(done.FinishedAt);
        Assert.Equal("result", (await Store.GetStepOutputAsync(run.Id, "c"))!.Data.ToStringUtf8());
        await AssertNoLeaksAsync();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Report_ResultWithoutStarted_RecordsTheImpliedStartFirst(bool completed)
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        await Connect("agent-1", slots: 1);
        var a = Assert.Single(await Claim("agent-1", 1));

        var outcome = completed ? await Complete(a, "out") : await Fail(a, "boom", permanent: true);

        Assert.Equal(ReportOutcome.Accepted, outcome);
        var step = StepOf((await Store.GetRunAsync(run.Id))!, "a");
        var end = completed ? "STEP_STATE_SUCCEEDED" : "STEP_STATE_FAILED";
        Assert.Equal(
            [("STEP_STATE_READY", "STEP_STATE_ASSIGNED"), ("STEP_STATE_ASSIGNED", "STEP_STATE_RUNNING"), ("STEP_STATE_RUNNING", end)],
            step.History.TakeLast(3).Select(h => (h.FromState, h.ToState)));
        Assert.Equal("started", step.History[^2].Reason);
        Assert.All(step.History.TakeLast(3), h => Assert.Equal(1, h.Attempt));
    }

    [Fact]
    public async Task Report_AllConsumersSucceeded_IntermediateOutputDroppedUnlessKeepOutput()
    {
        var spec = Run(Shell("a"), Shell("kept").With(s => s.KeepOutput = true), Shell("b", "a", "kept"), Shell("c", "a"));
        var run = (await Store.SubmitRunAsync(spec, null)).Run;
        await Connect("agent-1", slots: 4);

        foreach (var a in await Claim("agent-1", 4))
        {
            await Complete(a, "out-" + a.StepId);
        }

        var consumers = await Claim("agent-1", 4);
        await Complete(consumers.Single(a => a.StepId == "b"), "out-b");
        Assert.NotNull(await Store.GetStepOutputAsync(run.Id, "a"));
        await Complete(consumers.Single(a => a.StepId == "c"), "out-c");

        var done = (await Store.GetRunAsync(run.Id))!;
        Assert.Null(await Store.GetStepOutputAsync(run.Id, "a"));
        Assert.True(StepOf(done, "a").OutputDropped);
        Assert.Equal("out-kept", (await Store.GetStepOutputAsync(run.Id, "kept"))!.Data.ToStringUtf8());
        Assert.Equal("out-b", (await Store.GetStepOutputAsync(run.Id, "b"))!.Data.ToStringUtf8());
        Assert.Equal("out-c", (await Store.GetStepOutputAsync(run.Id, "c"))!.Data.ToStringUtf8());
    }

    [Fact]
    public async Task Report_OutputOverInlineLimit_FailsStepWithReason()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        await Connect("agent-1", slots: 1);
        var a = Assert.Single(await Claim("agent-1", 1));

        await Store.ReportAsync([Completed(a, ByteString.CopyFrom(new byte[Options.OutputInlineLimit + 1]))]);

        var step = StepOf((await Store.GetRunAsync(run.Id))!, "a");
        Assert.Equal(StepState.Failed, step.State);
        Assert.Contains("output_uri", step.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Report_StaleFencingToken_RefusedAndStepSucceedsOnce()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        await Connect("agent-1", slots: 1);
        await Connect("agent-2", slots: 1);
        var old = Assert.Single(await Claim("agent-1", 1));
        Time.Advance(Options.LeaseDuration + TimeSpan.FromSeconds(1));
        await Store.RunMaintenanceAsync(100);
        var current = Assert.Single(await Claim("agent-2", 1));

        var staleOutcome = await Complete(old, "late");
        var currentOutcome = await Complete(current, "fresh");
        var againOutcome = await Complete(current, "twice");
        var unknown = await Store.ReportAsync([Completed(current, ByteString.Empty, runId: "no-such-run")]);

        Assert.Equal(ReportOutcome.StaleToken, staleOutcome);
        Assert.Equal(ReportOutcome.Accepted, currentOutcome);
        Assert.Equal(ReportOutcome.AlreadyApplied, againOutcome);
        Assert.Equal(ReportOutcome.UnknownAttempt, Assert.Single(unknown));
        Assert.True(current.FencingToken > old.FencingToken);
        Assert.Equal("fresh", (await Store.GetStepOutputAsync(run.Id, "a"))!.Data.ToStringUtf8());
        var step = StepOf((await Store.GetRunAsync(run.Id))!, "a");
        Assert.Single(step.History, h => h.ToState == "STEP_STATE_SUCCEEDED");
    }

    // ---- Leases, retries, timeouts ----------------------------------------------------------------

    [Fact]
    public async Task Maintenance_LeaseExpired_RequeuesWithNextAttemptSameCheckpointNewToken()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        await Connect("agent-1", slots: 1);
        await Connect("agent-2", slots: 1);
        var first = Assert.Single(await Claim("agent-1", 1));
        await Store.ReportAsync([new AttemptReport(Ref(first), new ConnectRequest { StepCheckpoint = new StepCheckpoint { FencingToken = first.FencingToken, Data = ByteString.CopyFromUtf8("cp-1") } })]);

        Time.Advance(Options.LeaseDuration - TimeSpan.FromSeconds(1));
        var early = await Store.RunMaintenanceAsync(100);
        Time.Advance(TimeSpan.FromSeconds(2));
        var late = await Store.RunMaintenanceAsync(100);

        Assert.Equal(0, early.LeasesExpired);
        Assert.Equal(1, late.LeasesExpired);
        var requeued = StepOf((await Store.GetRunAsync(run.Id))!, "a");
        Assert.Equal(StepState.Ready, requeued.State);
        Assert.True(requeued.HasCheckpoint);
        Assert.Equal(0, (await Store.ListAgentsAsync()).Single(a => a.AgentId == "agent-1").UsedSlots);
        var second = Assert.Single(await Claim("agent-2", 1));
        Assert.Equal(2, second.Attempt);
        Assert.True(second.FencingToken > first.FencingToken);
        Assert.True(second.HasCheckpoint);
        Assert.Equal("cp-1", second.Checkpoint.ToStringUtf8());
    }

    [Fact]
    public async Task RenewLeases_Heartbeats_KeepAttemptAliveAndReportStaleTokens()
    {
        await Store.SubmitRunAsync(Run(Shell("a")), null);
        await Connect("agent-1", slots: 1);
        var a = Assert.Single(await Claim("agent-1", 1));

        for (var i = 0; i < 4; i++)
        {
            Time.Advance(Options.LeaseDuration / 2);
            var stop = await Store.RenewLeasesAsync("agent-1", [Ref(a), new AttemptRef(a.RunId, a.StepId, a.FencingToken + 1000)]);
            Assert.Equal(new[] { a.FencingToken + 1000 }, stop);
        }

        var result = await Store.RunMaintenanceAsync(100);
        Assert.Equal(0, result.LeasesExpired);
        Assert.Equal(ReportOutcome.Accepted, await Complete(a));
    }

    [Fact]
    public async Task Maintenance_LeaseExpiredTooOften_StepFails()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        await Connect("agent-1", slots: 1);

        for (var i = 0; i < Options.LeaseExpiryAttempts; i++)
        {
            Assert.Single(await Claim("agent-1", 1));
            Time.Advance(Options.LeaseDuration + TimeSpan.FromSeconds(1));
            await Store.RunMaintenanceAsync(100);
        }

        var done = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(StepState.Failed, StepOf(done, "a").State);
        Assert.Equal(Options.LeaseExpiryAttempts, StepOf(done, "a").Attempt);
        Assert.Equal(RunState.Failed, done.State);
        await AssertNoLeaksAsync();
    }

    [Fact]
    public async Task ConnectAgent_ReannouncedAttempts_KeepsCurrentRevokesStale()
    {
        await Store.SubmitRunAsync(Run(Shell("a"), Shell("b")), null);
        var before = await Connect("agent-1", slots: 2);
        var claimed = await Claim("agent-1", 2);

        // Started: a RUNNING attempt the agent does not name keeps its lease until it expires (an ASSIGNED one would be
        // released at once as never delivered).
        await Store.ReportAsync([new AttemptReport(Ref(claimed[1]), new ConnectRequest { StepStarted = new StepStarted { FencingToken = claimed[1].FencingToken } })]);
        await Store.DisconnectAgentAsync("agent-1", before.SessionId);
        Time.Advance(Options.LeaseDuration - TimeSpan.FromSeconds(5));

        var session = await Connect("agent-1", slots: 2, running: [Ref(claimed[0]), new AttemptRef(claimed[1].RunId, claimed[1].StepId, 999_999)]);
        Time.Advance(TimeSpan.FromSeconds(10));
        var result = await Store.RunMaintenanceAsync(100);

        Assert.Equal(new long[] { 999_999 }, session.RevokedTokens);
        Assert.Equal(1, result.LeasesExpired);
        Assert.Equal(ReportOutcome.Accepted, await Complete(claimed[0]));
        Assert.Equal(ReportOutcome.StaleToken, await Complete(claimed[1]));
    }

    [Fact]
    public async Task Report_RetryableFailure_WaitsBackoffThenRetriesUntilOutOfAttempts()
    {
        var retry = new RetryPolicy { MaxAttempts = 3, Backoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(2)), BackoffMultiplier = 2 };
        var run = (await Store.SubmitRunAsync(Run(Shell("a").With(s => s.Retry = retry)), null)).Run;
        await Connect("agent-1", slots: 1);

        var first = Assert.Single(await Claim("agent-1", 1));
        await Fail(first, "boom-1");
        Assert.Equal(StepState.RetryWait, StepOf((await Store.GetRunAsync(run.Id))!, "a").State);
        Assert.Empty(await Claim("agent-1", 1));
        Time.Advance(TimeSpan.FromSeconds(1.5));
        Assert.Equal(0, (await Store.RunMaintenanceAsync(100)).RetriesReleased);
        Time.Advance(TimeSpan.FromSeconds(0.5));
        Assert.Equal(1, (await Store.RunMaintenanceAsync(100)).RetriesReleased);

        var second = Assert.Single(await Claim("agent-1", 1));
        Assert.Equal(2, second.Attempt);
        await Fail(second, "boom-2");
        Time.Advance(TimeSpan.FromSeconds(3.9));
        Assert.Equal(0, (await Store.RunMaintenanceAsync(100)).RetriesReleased);
        Time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Equal(1, (await Store.RunMaintenanceAsync(100)).RetriesReleased);

        var third = Assert.Single(await Claim("agent-1", 1));
        Assert.Equal(3, third.Attempt);
        await Fail(third, "boom-3");
        var done = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(StepState.Failed, StepOf(done, "a").State);
        Assert.Contains("boom-3", StepOf(done, "a").Error, StringComparison.Ordinal);
        Assert.Equal(RunState.Failed, done.State);
    }

    [Fact]
    public async Task Report_PermanentFailure_NoRetry()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a").With(s => s.Retry = new RetryPolicy { MaxAttempts = 5 })), null)).Run;
        await Connect("agent-1", slots: 1);

        await Fail(Assert.Single(await Claim("agent-1", 1)), "bad input", permanent: true);

        Assert.Equal(StepState.Failed, StepOf((await Store.GetRunAsync(run.Id))!, "a").State);
    }

    [Fact]
    public async Task Maintenance_StepTimeout_FailsAttemptAndAsksAgentToStop()
    {
        var signals = await Subscribe();
        var spec = Run(Shell("a").With(s => s.Timeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(10))));
        var run = (await Store.SubmitRunAsync(spec, null)).Run;
        await Connect("agent-1", slots: 1);
        var a = Assert.Single(await Claim("agent-1", 1));

        Time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(0, (await Store.RunMaintenanceAsync(100)).TimedOut);
        await Store.RenewLeasesAsync("agent-1", [Ref(a)]);
        Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, (await Store.RunMaintenanceAsync(100)).TimedOut);

        var step = StepOf((await Store.GetRunAsync(run.Id))!, "a");
        Assert.Equal(StepState.Failed, step.State);
        Assert.Contains("timed out", step.Error, StringComparison.Ordinal);
        await signals.WaitForAsync<AttemptCancelRequested>(s => s.FencingToken == a.FencingToken);
        Assert.Equal(ReportOutcome.StaleToken, await Complete(a));
        await AssertNoLeaksAsync();
    }

    // ---- Failure semantics, gates ----------------------------------------------------------------

    [Fact]
    public async Task Report_StepFailsForGood_DownstreamSkippedAlwaysAndOnFailureHooksRun()
    {
        var spec = Run(
            Shell("a"),
            Shell("b", "a"),
            Shell("c", "b"),
            Shell("cleanup", "b").With(s => s.RunIf = RunIf.Always),
            Shell("page", "c").With(s => s.RunIf = RunIf.OnFailure),
            Shell("independent"));
        var run = (await Store.SubmitRunAsync(spec, null)).Run;
        await Connect("agent-1", slots: 10);
        var roots = await Claim("agent-1", 10);

        await Fail(roots.Single(r => r.StepId == "a"), "broken", permanent: true);
        var mid = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(StepState.Skipped, StepOf(mid, "b").State);
        Assert.Equal(StepState.Skipped, StepOf(mid, "c").State);
        Assert.Contains("'a'", StepOf(mid, "b").Error, StringComparison.Ordinal);
        Assert.Equal(RunState.Running, mid.State);

        var hooks = await Claim("agent-1", 10);
        Assert.Equal(new[] { "cleanup", "page" }, hooks.Select(h => h.StepId).Order());
        foreach (var hook in hooks)
        {
            await Complete(hook);
        }

        Assert.Equal(RunState.Running, (await Store.GetRunAsync(run.Id))!.State);
        await Complete(roots.Single(r => r.StepId == "independent"));
        var done = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(RunState.Failed, done.State);
        Assert.Contains("'a'", done.Error, StringComparison.Ordinal);
        Assert.Equal(StepState.Succeeded, StepOf(done, "independent").State);
        AssertHistoryFollowsTables(done);
    }

    [Fact]
    public async Task Report_AllSucceed_OnFailureHookSkippedRunSucceeds()
    {
        var spec = Run(Shell("a"), Shell("page", "a").With(s => s.RunIf = RunIf.OnFailure));
        var run = (await Store.SubmitRunAsync(spec, null)).Run;
        await Connect("agent-1", slots: 10);

        await Complete(Assert.Single(await Claim("agent-1", 10)));

        var done = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(StepState.Skipped, StepOf(done, "page").State);
        Assert.Equal(RunState.Succeeded, done.State);
    }

    [Fact]
    public async Task DecideGate_Approve_UnblocksChildren()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("build"), Gate("approve", "build"), Shell("publish", "approve")), null)).Run;
        await Connect("agent-1", slots: 4);
        await Complete(Assert.Single(await Claim("agent-1", 4)), "artifact");
        Assert.Equal(StepState.WaitingApproval, StepOf((await Store.GetRunAsync(run.Id))!, "approve").State);
        Assert.Empty(await Claim("agent-1", 4));

        var decided = await Store.DecideGateAsync(new GateDecisionInput(run.Id, "approve", true, "alice", "looks good"));

        Assert.Equal(StepState.Succeeded, StepOf(decided, "approve").State);
        Assert.Equal("alice", StepOf(decided, "approve").DecidedBy);
        Assert.Equal("looks good", StepOf(decided, "approve").DecisionComment);
        var publish = Assert.Single(await Claim("agent-1", 4));
        Assert.Equal("publish", publish.StepId);
        var events = await ReadAllEventsAsync(run.Id);
        Assert.Contains(events, e => e.GateDecided is { Approved: true, DecidedBy: "alice" });
    }

    [Fact]
    public async Task DecideGate_Reject_FailsGateSkipsDownstreamFailsRun()
    {
        var run = (await Store.SubmitRunAsync(Run(Gate("approve"), Shell("publish", "approve")), null)).Run;

        var decided = await Store.DecideGateAsync(new GateDecisionInput(run.Id, "approve", false, "bob", "not today"));

        Assert.Equal(StepState.Failed, StepOf(decided, "approve").State);
        Assert.Equal(StepState.Skipped, StepOf(decided, "publish").State);
        Assert.Equal(RunState.Failed, decided.State);
        var again = await Assert.ThrowsAsync<RunStoreException>(() => Store.DecideGateAsync(new GateDecisionInput(run.Id, "approve", true, "bob", "")));
        Assert.Equal(RunStoreError.FailedPrecondition, again.Error);
    }

    [Fact]
    public async Task DecideGate_TaskOrUnknownStep_Refused()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;

        var task = await Assert.ThrowsAsync<RunStoreException>(() => Store.DecideGateAsync(new GateDecisionInput(run.Id, "a", true, "x", "")));
        var unknown = await Assert.ThrowsAsync<RunStoreException>(() => Store.DecideGateAsync(new GateDecisionInput(run.Id, "zzz", true, "x", "")));

        Assert.Equal(RunStoreError.FailedPrecondition, task.Error);
        Assert.Equal(RunStoreError.NotFound, unknown.Error);
    }

    // ---- Cancel, pause, retry ---------------------------------------------------------------------

    [Fact]
    public async Task CancelRun_RunningAttempts_FlaggedNothingNewDispatchedCancelledWhenAttemptsEnd()
    {
        var signals = await Subscribe();
        var run = (await Store.SubmitRunAsync(Run(Shell("a"), Shell("b"), Shell("c"), Shell("d", "a")).With(s => s.Concurrency = 2), null)).Run;
        await Connect("agent-1", slots: 10);
        var running = await Claim("agent-1", 10);

        var cancelling = await Store.CancelRunAsync(run.Id, "user asked");

        Assert.Equal(RunState.Cancelling, cancelling.State);
        Assert.Equal(StepState.Cancelled, StepOf(cancelling, "c").State);
        Assert.Equal(StepState.Cancelled, StepOf(cancelling, "d").State);
        foreach (var a in running)
        {
            await signals.WaitForAsync<AttemptCancelRequested>(s => s.FencingToken == a.FencingToken && s.AgentId == "agent-1");
        }

        Assert.Equal(running.Select(a => a.FencingToken).Order(), (await Store.RenewLeasesAsync("agent-1", running.Select(Ref).ToList())).Order());
        Assert.Empty(await Claim("agent-1", 10));
        Assert.Equal(ReportOutcome.Accepted, await Complete(running[0]));
        Assert.Equal(RunState.Cancelling, (await Store.GetRunAsync(run.Id))!.State);
        await Store.ReportAsync([Failed(running[1], "stopped", cancelled: true)]);

        var done = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(RunState.Cancelled, done.State);
        Assert.All(done.Steps, s => Assert.Equal(StepState.Cancelled, s.State));
        await AssertNoLeaksAsync();
        var terminal = await Assert.ThrowsAsync<RunStoreException>(() => Store.CancelRunAsync(run.Id, "again"));
        Assert.Equal(RunStoreError.FailedPrecondition, terminal.Error);
    }

    [Fact]
    public async Task CancelRun_NothingRunning_CancelledAtOnce()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a"), Gate("g")), null)).Run;

        var cancelled = await Store.CancelRunAsync(run.Id, "");

        Assert.Equal(RunState.Cancelled, cancelled.State);
        Assert.All(cancelled.Steps, s => Assert.Equal(StepState.Cancelled, s.State));
        var missing = await Assert.ThrowsAsync<RunStoreException>(() => Store.CancelRunAsync("no-such-run", ""));
        Assert.Equal(RunStoreError.NotFound, missing.Error);
    }

    [Fact]
    public async Task PauseRun_ThenResume_DispatchesOnlyAfterResume()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a"), Shell("b", "a")), null)).Run;
        await Connect("agent-1", slots: 4);
        var a = Assert.Single(await Claim("agent-1", 4));

        var paused = await Store.PauseRunAsync(run.Id);
        await Complete(a);

        Assert.Equal(RunState.Paused, paused.State);
        var mid = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(StepState.Ready, StepOf(mid, "b").State);
        Assert.Contains("paused", StepOf(mid, "b").BlockedReason, StringComparison.Ordinal);
        Assert.Empty(await Claim("agent-1", 4));

        var resumed = await Store.ResumeRunAsync(run.Id);
        Assert.Equal(RunState.Running, resumed.State);
        await Complete(Assert.Single(await Claim("agent-1", 4)));
        Assert.Equal(RunState.Succeeded, (await Store.GetRunAsync(run.Id))!.State);
        var resumeDone = await Assert.ThrowsAsync<RunStoreException>(() => Store.ResumeRunAsync(run.Id));
        Assert.Equal(RunStoreError.FailedPrecondition, resumeDone.Error);
    }

    [Fact]
    public async Task RetryRun_FailedRun_RerunsFailedAndSkippedKeepsSucceededOutputs()
    {
        var spec = Run(Shell("a"), Shell("b", "a"), Shell("c", "b"));
        var run = (await Store.SubmitRunAsync(spec, null)).Run;
        await Connect("agent-1", slots: 4);
        await Complete(Assert.Single(await Claim("agent-1", 4)), "a-out");
        var b1 = Assert.Single(await Claim("agent-1", 4));
        await Fail(b1, "flaky", permanent: true);
        Assert.Equal(RunState.Failed, (await Store.GetRunAsync(run.Id))!.State);

        var retried = await Store.RetryRunAsync(run.Id);

        Assert.Equal(RunState.Running, retried.State);
        Assert.Equal(StepState.Succeeded, StepOf(retried, "a").State);
        Assert.Equal(StepState.Ready, StepOf(retried, "b").State);
        Assert.Equal(StepState.Blocked, StepOf(retried, "c").State);
        var b2 = Assert.Single(await Claim("agent-1", 4));
        Assert.Equal("b", b2.StepId);
        Assert.Equal(2, b2.Attempt);
        Assert.True(b2.FencingToken > b1.FencingToken);
        Assert.Equal("a-out", b2.Inputs.Single().Data.ToStringUtf8());
        await Complete(b2, "b-out");
        await Complete(Assert.Single(await Claim("agent-1", 4)), "c-out");
        var done = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(RunState.Succeeded, done.State);
        Assert.Equal("", done.Error);
        AssertHistoryFollowsTables(done);
        var notFinished = await Assert.ThrowsAsync<RunStoreException>(() => Store.RetryRunAsync(run.Id));
        Assert.Equal(RunStoreError.FailedPrecondition, notFinished.Error);
    }

    // ---- Events, stats, signals -------------------------------------------------------------------

    [Fact]
    public async Task ReadEvents_AfterARun_NumberedOneToNWithoutGapsAndPaged()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a"), Shell("b", "a")), null)).Run;
        await Connect("agent-1", slots: 4);
        var a = Assert.Single(await Claim("agent-1", 4));
        await Store.ReportAsync(
        [
            new AttemptReport(Ref(a), new ConnectRequest { StepStarted = new StepStarted { FencingToken = a.FencingToken } }),
            new AttemptReport(Ref(a), new ConnectRequest { StepProgress = new StepProgress { FencingToken = a.FencingToken, Percent = 50, Message = "half" } }),
            new AttemptReport(Ref(a), new ConnectRequest { StepLog = new StepLog { FencingToken = a.FencingToken, Stream = LogStream.Stdout, Lines = { "one", "two" } } }),
        ]);
        await Complete(a);
        await Complete(Assert.Single(await Claim("agent-1", 4)));

        var events = await ReadAllEventsAsync(run.Id);
        var final = (await Store.GetRunAsync(run.Id))!;
        var tail = await Store.ReadEventsAsync(run.Id, 3, 2);

        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Seq));
        Assert.Equal(final.LastEventSeq, events.Count);
        Assert.All(events, e => Assert.Equal(run.Id, e.RunId));
        Assert.Contains(events, e => e.StepProgressed is { Percent: 50, Message: "half" });
        Assert.Contains(events, e => e.StepLogged is { } l && l.Lines.SequenceEqual(new[] { "one", "two" }));
        Assert.Contains(events, e => e.RunStateChanged is { ToState: RunState.Succeeded });
        Assert.Equal(new long[] { 4, 5 }, tail.Select(e => e.Seq));
        Assert.Empty(await Store.ReadEventsAsync(run.Id, final.LastEventSeq, 10));
        var stepTransitions = events.Where(e => e.StepStateChanged is not null).Count();
        Assert.Equal(final.Steps.Sum(s => s.History.Count), stepTransitions);
    }

    [Fact]
    public async Task Subscribe_StateChanges_SignalReadyWorkAndEvents()
    {
        var signals = await Subscribe();

        var run = (await Store.SubmitRunAsync(Run(Shell("a").With(s => s.Queue = "fast")), null)).Run;

        await signals.WaitForAsync<ReadyWork>(s => s.Queue == "fast");
        await signals.WaitForAsync<RunEventsAppended>(s => s.RunId == run.Id && s.LastSeq == run.LastEventSeq);
    }

    [Fact]
    public async Task GetStats_AllRunsTerminal_EveryCounterAndReservationBackToZero()
    {
        await Store.SetLimitAsync(LimitKind.Queue, "default", 3);
        await Store.SetLimitAsync(LimitKind.ConcurrencyKey, "gpu", 2);
        StepSpec Step(string id, params string[] needs) =>
            Shell(id, needs).With(s => { s.ConcurrencyKey = "gpu"; s.Estimate["usd"] = 1; });
        RunSpec Spec() => Run(Step("a"), Step("b"), Step("c", "a")).With(s => { s.Budget["usd"] = 10; s.Concurrency = 2; });
        var succeed = (await Store.SubmitRunAsync(Spec(), null)).Run;
        var fail = (await Store.SubmitRunAsync(Spec(), null)).Run;
        var cancel = (await Store.SubmitRunAsync(Spec(), null)).Run;
        await Connect("agent-1", slots: 2);
        await Connect("agent-2", slots: 2);

        // Lease expiry, failure, success and cancel all release what they hold.
        var lost = await Claim("agent-1", 2);
        Time.Advance(Options.LeaseDuration + TimeSpan.FromSeconds(1));
        await Store.RunMaintenanceAsync(100);
        var busy = await Store.GetStatsAsync();
        Assert.All(busy.Slots, s => Assert.True(s.Limit == 0 || s.Used <= s.Limit, $"{s.Kind} {s.Name}: {s.Used}/{s.Limit}"));
        for (var round = 0; round < 20; round++)
        {
            var claimed = (await Claim("agent-1", 2)).Concat(await Claim("agent-2", 2)).ToList();
            if (claimed.Count == 0)
            {
                break;
            }

            foreach (var a in claimed)
            {
                if (a.RunId == fail.Id)
                {
                    await Fail(a, "bad", permanent: true);
                }
                else if (a.RunId == cancel.Id)
                {
                    await Store.CancelRunAsync(cancel.Id, "stop");
                    await Complete(a);
                }
                else
                {
                    await Complete(a, usage: new() { ["usd"] = 0.5 });
                }
            }
        }

        Assert.NotEmpty(lost);
        Assert.Equal(RunState.Succeeded, (await Store.GetRunAsync(succeed.Id))!.State);
        Assert.Equal(RunState.Failed, (await Store.GetRunAsync(fail.Id))!.State);
        Assert.Equal(RunState.Cancelled, (await Store.GetRunAsync(cancel.Id))!.State);
        await AssertNoLeaksAsync();
        var succeeded = (await Store.GetRunAsync(succeed.Id))!;
        Assert.DoesNotContain(succeeded.BudgetReserved, p => p.Value != 0);
        Assert.True(succeeded.BudgetUsed["usd"] > 0);
    }

    // ---- Helpers -----------------------------------------------------------------------------------

    protected static Step StepOf(Run run, string stepId) => run.Steps.Single(s => s.Id == stepId);

    protected static AttemptRef Ref(Assignment a) => new(a.RunId, a.StepId, a.FencingToken);

    protected Task<AgentSession> Connect(
        string agentId, int slots, IReadOnlyList<string>? queues = null, IReadOnlyList<string>? frameworks = null,
        IReadOnlyList<string>? handlers = null, IReadOnlyList<AttemptRef>? running = null) =>
        Store.ConnectAgentAsync(new AgentRegistration(
            agentId, "host-" + agentId, frameworks ?? ["shell", "dotnet"], queues ?? [], new Dictionary<string, string>(), slots,
            handlers ?? [], running ?? []));

    protected async Task<List<Assignment>> Claim(string agentId, int max) => [.. await Store.ClaimAsync(new ClaimRequest(agentId, max))];

    protected static AttemptReport Completed(Assignment a, ByteString output, Dictionary<string, double>? usage = null, string? runId = null)
    {
        var completed = new StepCompleted { FencingToken = a.FencingToken, Output = output };
        if (usage is not null)
        {
            completed.Usage.Add(usage);
        }

        return new AttemptReport(new AttemptRef(runId ?? a.RunId, a.StepId, a.FencingToken), new ConnectRequest { StepCompleted = completed });
    }

    protected static AttemptReport Failed(Assignment a, string error, bool permanent = false, bool cancelled = false) =>
        new(Ref(a), new ConnectRequest { StepFailed = new StepFailed { FencingToken = a.FencingToken, Error = error, Permanent = permanent, Cancelled = cancelled } });

    protected async Task<ReportOutcome> Complete(Assignment a, string output = "", Dictionary<string, double>? usage = null) =>
        (await Store.ReportAsync([Completed(a, ByteString.CopyFromUtf8(output), usage)])).Single();

    protected async Task<ReportOutcome> Fail(Assignment a, string error, bool permanent = false) =>
        (await Store.ReportAsync([Failed(a, error, permanent)])).Single();

    protected async Task<SignalRecorder> Subscribe()
    {
        var recorder = new SignalRecorder();
        var subscription = await Store.SubscribeAsync(recorder.Handle);
        _subscriptions.Add(subscription);
        return recorder;
    }

    private readonly List<IAsyncDisposable> _subscriptions = [];

    protected async Task<List<RunEvent>> ReadAllEventsAsync(string runId)
    {
        var all = new List<RunEvent>();
        while (true)
        {
            var batch = await Store.ReadEventsAsync(runId, all.Count == 0 ? 0 : all[^1].Seq, 100);
            if (batch.Count == 0)
            {
                return all;
            }

            all.AddRange(batch);
        }
    }

    protected async Task AssertNoLeaksAsync()
    {
        var stats = await Store.GetStatsAsync();
        Assert.All(stats.Slots, s => Assert.True(s.Used == 0, $"{s.Kind} counter '{s.Name}' still holds {s.Used}"));
        Assert.All(stats.BudgetReserved, p => Assert.True(Math.Abs(p.Value) < 1e-9, $"budget '{p.Key}' still reserves {p.Value}"));
        Assert.All(stats.Queues, q => Assert.Equal(0, q.Running));
    }

    /// <summary>Every history entry of the run and its steps is a transition the tables allow.</summary>
    protected static void AssertHistoryFollowsTables(Run run)
    {
        foreach (var h in run.History.Where(h => h.FromState != "RUN_STATE_UNSPECIFIED"))
        {
            Assert.True(RunStateMachine.CanTransition(StateNames.ParseRunState(h.FromState), StateNames.ParseRunState(h.ToState)), $"run {h.FromState} -> {h.ToState}");
        }

        foreach (var step in run.Steps)
        {
            foreach (var h in step.History)
            {
                Assert.True(StepStateMachine.CanTransition(StateNames.ParseStepState(h.FromState), StateNames.ParseStepState(h.ToState)), $"{step.Id}: {h.FromState} -> {h.ToState}");
            }
        }
    }
}
