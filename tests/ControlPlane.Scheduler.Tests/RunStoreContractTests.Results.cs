using ControlPlane.V1;
using Google.Protobuf;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

/// <summary>Results sent again after a lost acknowledgement, and assignments an agent declines.</summary>
public abstract partial class RunStoreContractTests
{
    private static AttemptReport Declined(Assignment a, string reason) =>
        new(Ref(a), new ConnectRequest { StepDeclined = new StepDeclined { FencingToken = a.FencingToken, Reason = reason } });

    [Fact]
    public async Task Report_SameCompletionTwice_AppliedOnceAndTheRepeatIsAlreadyApplied()
    {
        var spec = Run(Shell("a").With(s => s.Estimate["cpu_seconds"] = 10), Shell("b", "a")).With(s => s.Budget["cpu_seconds"] = 100);
        var run = (await Store.SubmitRunAsync(spec, null)).Run;
        await Connect("agent-1", slots: 2);
        var a = Assert.Single(await Claim("agent-1", 2));
        var usage = new Dictionary<string, double> { ["cpu_seconds"] = 7 };

        var first = await Complete(a, "out", usage);
        var again = await Complete(a, "out", usage);
        var b = Assert.Single(await Claim("agent-1", 2));
        var third = await Complete(a, "out", usage);

        Assert.Equal(ReportOutcome.Accepted, first);
        Assert.Equal(ReportOutcome.AlreadyApplied, again);
        Assert.Equal(ReportOutcome.AlreadyApplied, third);
        Assert.Equal("b", b.StepId);
        var after = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(7, after.BudgetUsed["cpu_seconds"]);
        Assert.Equal(7, StepOf(after, "a").Usage["cpu_seconds"]);
        Assert.Single(StepOf(after, "a").History, h => h.ToState == "STEP_STATE_SUCCEEDED");
        Assert.Equal("out", (await Store.GetStepOutputAsync(run.Id, "a"))!.Data.ToStringUtf8());
    }

    [Fact]
    public async Task Report_SameFailureTwice_CountedAsOneAttempt()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a").With(s => s.Retry = new RetryPolicy { MaxAttempts = 2 })), null)).Run;
        await Connect("agent-1", slots: 1);
        var a = Assert.Single(await Claim("agent-1", 1));

        var first = await Fail(a, "boom");
        var again = await Fail(a, "boom");

        Assert.Equal(ReportOutcome.Accepted, first);
        Assert.Equal(ReportOutcome.AlreadyApplied, again);
        var step = StepOf((await Store.GetRunAsync(run.Id))!, "a");
        Assert.Equal(StepState.RetryWait, step.State);
        Assert.Single(step.History, h => h.ToState == "STEP_STATE_RETRY_WAIT");
        await AssertNoLeaksAsync();
    }

    [Fact]
    public async Task Report_Declined_StepReadyAgainAtTheSameAttemptWithNothingCharged()
    {
        // One attempt allowed and a budget that fits one estimate: a decline that counted would fail or starve the step.
        var spec = Run(Shell("a").With(s =>
        {
            s.Estimate["cpu_seconds"] = 60;
            s.Retry = new RetryPolicy { MaxAttempts = 1 };
        })).With(s => s.Budget["cpu_seconds"] = 100);
        var run = (await Store.SubmitRunAsync(spec, null)).Run;
        await Connect("agent-1", slots: 1);
        await Connect("agent-2", slots: 1);
        var declined = Assert.Single(await Claim("agent-1", 1));

        var outcome = (await Store.ReportAsync([Declined(declined, "agent 'agent-1' is draining")])).Single();
        var between = (await Store.GetRunAsync(run.Id))!;
        var repeat = (await Store.ReportAsync([Declined(declined, "agent 'agent-1' is draining")])).Single();
        await AssertNoLeaksAsync();
        var taken = Assert.Single(await Claim("agent-2", 1));
        Assert.Equal(ReportOutcome.Accepted, await Complete(taken, "done"));

        Assert.Equal(ReportOutcome.Accepted, outcome);
        Assert.Equal(ReportOutcome.AlreadyApplied, repeat);
        var ready = StepOf(between, "a");
        Assert.Equal(StepState.Ready, ready.State);
        Assert.Equal(0, ready.Attempt);
        Assert.Empty(between.BudgetUsed);
        Assert.Empty(ready.Usage);
        Assert.Contains(ready.History, h => h.ToState == "STEP_STATE_READY" && h.Attempt == 1 && h.Reason.Contains("declined by agent agent-1: agent 'agent-1' is draining", StringComparison.Ordinal));
        Assert.Equal(1, taken.Attempt);
        Assert.True(taken.FencingToken > declined.FencingToken);
        var final = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(RunState.Succeeded, final.State);
        Assert.Equal(1, StepOf(final, "a").Attempt);
        Assert.Equal("agent-2", StepOf(final, "a").AgentId);
        AssertHistoryFollowsTables(final);
        await AssertNoLeaksAsync();
    }

    [Fact]
    public async Task Report_DeclinedWhileItsRunIsCancelled_StepCancelled()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        await Connect("agent-1", slots: 1);
        var a = Assert.Single(await Claim("agent-1", 1));
        await Store.CancelRunAsync(run.Id, "stop");

        var outcome = (await Store.ReportAsync([Declined(a, "draining")])).Single();

        Assert.Equal(ReportOutcome.Accepted, outcome);
        var final = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(StepState.Cancelled, StepOf(final, "a").State);
        Assert.Equal(RunState.Cancelled, final.State);
        await AssertNoLeaksAsync();
    }
}
