using ControlPlane.V1;
using Xunit;
using ControlPlane.Scheduler.Internal;

namespace ControlPlane.Scheduler.Tests;

public sealed class StateMachineTests
{
    [Theory]
    [InlineData(StepState.Blocked, StepState.Ready)]
    [InlineData(StepState.Ready, StepState.Assigned)]
    [InlineData(StepState.Assigned, StepState.Running)]
    [InlineData(StepState.Running, StepState.Succeeded)]
    [InlineData(StepState.Running, StepState.RetryWait)]
    [InlineData(StepState.RetryWait, StepState.Ready)]
    [InlineData(StepState.Running, StepState.Ready)]
    [InlineData(StepState.Blocked, StepState.WaitingApproval)]
    [InlineData(StepState.WaitingApproval, StepState.Failed)]
    [InlineData(StepState.Blocked, StepState.Skipped)]
    [InlineData(StepState.Failed, StepState.Blocked)]
    public void StepCanTransition_DesignedTransition_Allowed(StepState from, StepState to)
    {
        Assert.True(StepStateMachine.CanTransition(from, to));
    }

    [Theory]
    [InlineData(StepState.Succeeded, StepState.Ready)]
    [InlineData(StepState.Succeeded, StepState.Failed)]
    [InlineData(StepState.Blocked, StepState.Assigned)]
    [InlineData(StepState.Ready, StepState.Running)]
    [InlineData(StepState.Ready, StepState.Succeeded)]
    [InlineData(StepState.WaitingApproval, StepState.Ready)]
    [InlineData(StepState.Skipped, StepState.Succeeded)]
    [InlineData(StepState.Unspecified, StepState.Ready)]
    public void StepCanTransition_OtherTransition_Refused(StepState from, StepState to)
    {
        Assert.False(StepStateMachine.CanTransition(from, to));
    }

    [Fact]
    public void StepTransitions_TerminalStatesLeaveOnlyForRetryRun()
    {
        var leaving = StepStateMachine.Transitions.Where(t => StepStateMachine.IsTerminal(t.From)).ToList();

        Assert.All(leaving, t => Assert.Contains(t.To, new[] { StepState.Blocked, StepState.Ready, StepState.WaitingApproval }));
        Assert.DoesNotContain(leaving, t => t.From == StepState.Succeeded);
        Assert.Equal(StepStateMachine.Transitions.Count, StepStateMachine.Transitions.Distinct().Count());
    }

    [Theory]
    [InlineData(RunState.Pending, RunState.Running)]
    [InlineData(RunState.Running, RunState.Paused)]
    [InlineData(RunState.Paused, RunState.Running)]
    [InlineData(RunState.Running, RunState.Cancelling)]
    [InlineData(RunState.Cancelling, RunState.Cancelled)]
    [InlineData(RunState.Failed, RunState.Running)]
    public void RunCanTransition_DesignedTransition_Allowed(RunState from, RunState to)
    {
        Assert.True(RunStateMachine.CanTransition(from, to));
    }

    [Theory]
    [InlineData(RunState.Succeeded, RunState.Running)]
    [InlineData(RunState.Cancelling, RunState.Running)]
    [InlineData(RunState.Cancelled, RunState.Succeeded)]
    [InlineData(RunState.Running, RunState.Pending)]
    [InlineData(RunState.Cancelling, RunState.Failed)]
    public void RunCanTransition_OtherTransition_Refused(RunState from, RunState to)
    {
        Assert.False(RunStateMachine.CanTransition(from, to));
    }

    [Fact]
    public void StateNames_RoundTrip_ProtoEnumValueNames()
    {
        Assert.Equal("STEP_STATE_WAITING_APPROVAL", StateNames.Of(StepState.WaitingApproval));
        Assert.Equal("RUN_STATE_CANCELLING", StateNames.Of(RunState.Cancelling));
        Assert.All(System.Enum.GetValues<StepState>(), s => Assert.Equal(s, StateNames.ParseStepState(StateNames.Of(s))));
        Assert.All(System.Enum.GetValues<RunState>(), s => Assert.Equal(s, StateNames.ParseRunState(StateNames.Of(s))));
    }

    [Theory]
    [InlineData(1, 2.0)]
    [InlineData(2, 4.0)]
    [InlineData(3, 8.0)]
    [InlineData(10, 60.0)]
    public void RetryBackoff_Compute_GrowsByMultiplierUpToMax(int attempt, double expectedSeconds)
    {
        var policy = new RetryPolicy
        {
            MaxAttempts = 20,
            Backoff = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(2)),
            BackoffMultiplier = 2,
            MaxBackoff = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromMinutes(1)),
        };

        Assert.Equal(TimeSpan.FromSeconds(expectedSeconds), RetryBackoff.Compute(policy, attempt));
    }

    [Fact]
    public void RetryBackoff_NoPolicy_UsesDefaults()
    {
        Assert.Equal(TimeSpan.FromSeconds(1), RetryBackoff.Compute(null, 1));
        Assert.Equal(TimeSpan.FromSeconds(2), RetryBackoff.Compute(null, 2));
        Assert.Equal(TimeSpan.FromMinutes(5), RetryBackoff.Compute(null, 100));
        Assert.Equal(1, RetryBackoff.MaxAttempts(null));
        Assert.Equal(1, RetryBackoff.MaxAttempts(new RetryPolicy { MaxAttempts = 0 }));
        Assert.Equal(4, RetryBackoff.MaxAttempts(new RetryPolicy { MaxAttempts = 4 }));
    }

    [Fact]
    public void RunStoreOptions_BadValue_ThrowsNamingSetting()
    {
        var ex = Assert.Throws<ArgumentException>(() => new RunStoreOptions { LeaseDuration = TimeSpan.Zero }.Validate());

        Assert.Contains("LeaseDuration", ex.Message, StringComparison.Ordinal);
    }
}
