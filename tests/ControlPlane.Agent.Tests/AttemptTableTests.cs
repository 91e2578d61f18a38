using ControlPlane.Agent.Internal;
using ControlPlane.V1;
using Xunit;

namespace ControlPlane.Agent.Tests;

public sealed class AttemptTableTests
{
    [Fact]
    public void Admit_TokenAlreadyHeld_IgnoredWithoutRefusalEvenWhenDraining()
    {
        var table = new AttemptTable("agent-1", slots: 2);
        Admit(table, 1, out _);
        table.BeginDrain();

        var again = Admit(table, 1, out var refusal);

        Assert.Null(again);
        Assert.Null(refusal);
        Assert.Equal(1, table.Running);
    }

    [Fact]
    public void Admit_BeyondFreeSlots_RefusedUntilAFinishFreesThem()
    {
        var table = new AttemptTable("agent-1", slots: 2);
        var first = Admit(table, 1, out _, stepSlots: 2)!;

        Assert.Null(Admit(table, 2, out var refusal));
        Assert.Equal("agent 'agent-1' has 0 free slots, the step needs 1", refusal);

        Assert.True(table.Finish(first));
        Assert.NotNull(Admit(table, 2, out _));
    }

    [Fact]
    public void Admit_WhileDraining_Refused()
    {
        var table = new AttemptTable("agent-1", slots: 2);

        Assert.True(table.BeginDrain());
        Assert.False(table.BeginDrain());
        Assert.Null(Admit(table, 3, out var refusal));

        Assert.Contains("draining", refusal, StringComparison.Ordinal);
        Assert.True(table.IsEmpty);
    }

    [Fact]
    public void Finish_RevokedAttempt_DroppedWithoutResultAndSlotsFreed()
    {
        var table = new AttemptTable("agent-1", slots: 1);
        var attempt = Admit(table, 4, out _)!;

        Assert.Same(attempt, table.Revoke(4));
        Assert.Empty(table.OwnedTokens());
        Assert.False(table.Finish(attempt));

        Assert.True(table.IsEmpty);
        Assert.NotNull(Admit(table, 5, out _));
    }

    [Fact]
    public void Forget_AfterResultWritten_NoLongerOwned()
    {
        var table = new AttemptTable("agent-1", slots: 1);
        var attempt = Admit(table, 6, out _)!;
        Assert.True(table.Finish(attempt));

        Assert.Equal([6L], table.OwnedTokens());
        Assert.Equal(0, table.Running);
        table.Forget(6);

        Assert.True(table.IsEmpty);
        Assert.Empty(table.Owned());
    }

    private static AttemptState? Admit(AttemptTable table, long token, out string? refusal, int stepSlots = 1)
    {
        refusal = null;
        var assignment = new Assignment { RunId = "run-1", StepId = $"s{token}", Attempt = 1, FencingToken = token, Spec = new StepSpec { Framework = "shell", Slots = stepSlots } };
        return table.Admit(assignment, stepSlots, ref refusal);
    }
}
