using ControlPlane.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

/// <summary>
/// Repeatable claims (a claim id repeated after a lost reply returns what the claim took) and session-fenced claims
/// (a claim for a stream the agent no longer reads takes nothing).
/// </summary>
public abstract partial class RunStoreContractTests
{
    [Fact]
    public async Task Claim_StepsReadyAtDifferentTimes_EachAssignmentCarriesWhenItsStepBecameReady()
    {
        var submitted = Ms(Time.GetUtcNow());
        await Store.SubmitRunAsync(Run(Shell("a"), Shell("b", "a")), null);
        await Connect("agent-1", slots: 1);
        Time.Advance(TimeSpan.FromSeconds(3));
        var a = Assert.Single(await Claim("agent-1", 1));
        Time.Advance(TimeSpan.FromSeconds(2));
        var unblocked = Ms(Time.GetUtcNow());
        await Complete(a);
        Time.Advance(TimeSpan.FromSeconds(4));

        var b = Assert.Single(await Claim("agent-1", 1));

        Assert.Equal(submitted, a.ReadyAt);
        Assert.Equal(unblocked, b.ReadyAt);
    }

    /// <summary>A store time as the stores keep it (milliseconds).</summary>
    private static Timestamp Ms(DateTimeOffset time) => Timestamp.FromDateTimeOffset(DateTimeOffset.FromUnixTimeMilliseconds(time.ToUnixTimeMilliseconds()));

    [Fact]
    public async Task Claim_SameClaimIdAgain_ReturnsTheSameAttemptsAndTakesNothingNew()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a"), Shell("b"), Shell("c")), null)).Run;
        var session = await Connect("agent-1", slots: 4);

        var first = await ClaimWithId("agent-1", 2, "claim-1", session.SessionId);
        var again = await ClaimWithId("agent-1", 2, "claim-1", session.SessionId);

        Assert.Equal(2, first.Count);
        Assert.Equal(first, again);
        var steps = (await Store.GetRunAsync(run.Id))!.Steps;
        Assert.Single(steps, s => s.State == StepState.Ready);
        Assert.All(steps.Where(s => s.State == StepState.Assigned), s => Assert.Equal(1, s.Attempt));
        Assert.Equal(2, (await Store.ListAgentsAsync()).Single().UsedSlots);
        Assert.Single(await ClaimWithId("agent-1", 2, "claim-2", session.SessionId));
    }

    [Fact]
    public async Task Claim_SameClaimIdLater_RenewsTheLeaseAndReadsTheCheckpointAndInputsAgain()
    {
        await Store.SubmitRunAsync(Run(Shell("a"), Shell("b", "a")), null);
        await Connect("agent-1", slots: 1);
        await Complete((await Claim("agent-1", 1))[0], "out-a");
        var claimed = (await ClaimWithId("agent-1", 1, "claim-1"))[0];
        await Store.ReportAsync([new AttemptReport(Ref(claimed),
            new ConnectRequest { StepCheckpoint = new StepCheckpoint { FencingToken = claimed.FencingToken, Data = ByteString.CopyFromUtf8("cp-1") } })]);
        Time.Advance(TimeSpan.FromSeconds(10));

        var again = Assert.Single(await ClaimWithId("agent-1", 1, "claim-1"));

        Assert.Equal((claimed.RunId, claimed.StepId, claimed.Attempt, claimed.FencingToken), (again.RunId, again.StepId, again.Attempt, again.FencingToken));
        Assert.Equal(Timestamp.FromDateTimeOffset(Time.GetUtcNow() + Options.LeaseDuration), again.LeaseExpiresAt);
        Assert.True(again.HasCheckpoint);
        Assert.Equal("cp-1", again.Checkpoint.ToStringUtf8());
        Assert.Equal("out-a", Assert.Single(again.Inputs).Data.ToStringUtf8());

        // The renewed lease holds past the original one.
        Time.Advance(Options.LeaseDuration - TimeSpan.FromSeconds(5));
        Assert.Equal(0, (await Store.RunMaintenanceAsync(100)).LeasesExpired);
    }

    [Fact]
    public async Task Claim_SameClaimIdAfterItsAttemptsEnded_LeavesThemOutAndTakesNothingNew()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a"), Shell("b"), Shell("c")), null)).Run;
        await Connect("agent-1", slots: 4);
        var first = await ClaimWithId("agent-1", 2, "claim-1");
        await Complete(first[0]);

        var afterCompletion = await ClaimWithId("agent-1", 2, "claim-1");
        Time.Advance(Options.LeaseDuration + TimeSpan.FromSeconds(1));
        await Store.RunMaintenanceAsync(100);
        var afterLeaseLost = await ClaimWithId("agent-1", 2, "claim-1");

        Assert.Equal([first[1]], afterCompletion);
        Assert.Empty(afterLeaseLost);
        var steps = (await Store.GetRunAsync(run.Id))!.Steps;
        Assert.Equal(StepState.Ready, steps.Single(s => s.Id == first[1].StepId).State);
        Assert.Equal(StepState.Ready, steps.Single(s => s.Id == "c").State);
    }

    [Fact]
    public async Task Claim_SameClaimIdByAnotherAgent_TakesNothing()
    {
        await Store.SubmitRunAsync(Run(Shell("a"), Shell("b")), null);
        await Connect("agent-1", slots: 1);
        await Connect("agent-2", slots: 1);
        await ClaimWithId("agent-1", 1, "claim-1");

        Assert.Empty(await ClaimWithId("agent-2", 1, "claim-1"));
        Assert.Single(await ClaimWithId("agent-2", 1, "claim-2"));
    }

    [Fact]
    public async Task Claim_SameClaimIdAfterTwiceTheLease_IsANewClaim()
    {
        await Store.SubmitRunAsync(Run(Shell("a"), Shell("b")), null);
        await Connect("agent-1", slots: 2);
        var first = Assert.Single(await ClaimWithId("agent-1", 1, "claim-1"));

        // The attempt stays current (its agent renews it), but the record is gone after twice the lease.
        for (var i = 0; i < 5; i++)
        {
            Time.Advance(Options.LeaseDuration / 2);
            await Store.RenewLeasesAsync("agent-1", [Ref(first)]);
        }

        var later = Assert.Single(await ClaimWithId("agent-1", 1, "claim-1"));
        Assert.NotEqual(first.StepId, later.StepId);
    }

    [Fact]
    public async Task Claim_StaleSession_TakesNothing()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        var old = await Connect("agent-1", slots: 1);
        var current = await Connect("agent-1", slots: 1);

        var stale = await ClaimWithId("agent-1", 1, "claim-1", old.SessionId);

        Assert.Empty(stale);
        Assert.Equal(StepState.Ready, (await Store.GetRunAsync(run.Id))!.Steps[0].State);
        Assert.Single(await ClaimWithId("agent-1", 1, "claim-2", current.SessionId));
    }

    [Fact]
    public async Task Claim_SameClaimIdFromAStaleSession_ReturnsNothing()
    {
        await Store.SubmitRunAsync(Run(Shell("a")), null);
        var old = await Connect("agent-1", slots: 1);
        Assert.Single(await ClaimWithId("agent-1", 1, "claim-1", old.SessionId));
        await Connect("agent-1", slots: 1);

        Assert.Empty(await ClaimWithId("agent-1", 1, "claim-1", old.SessionId));
    }

    [Theory]
    [InlineData("claim_id", "")]
    [InlineData("claim_id", "has space")]
    [InlineData("claim_id", "a|b")]
    [InlineData("claim_id", "x12345678901234567890123456789012345678901234567890123456789012345")]
    [InlineData("session_id", "")]
    [InlineData("session_id", "s\n")]
    public async Task Claim_BadClaimOrSessionId_RefusedWithTheField(string field, string value)
    {
        await Store.SubmitRunAsync(Run(Shell("a")), null);
        await Connect("agent-1", slots: 1);
        var request = field == "claim_id" ? new ClaimRequest("agent-1", 1) { ClaimId = value } : new ClaimRequest("agent-1", 1) { SessionId = value };

        var ex = await Assert.ThrowsAsync<RunStoreException>(() => Store.ClaimAsync(request));

        Assert.Equal(RunStoreError.InvalidArgument, ex.Error);
        Assert.Equal(field, ex.Field);
        Assert.Single(await Claim("agent-1", 1));
    }

    protected async Task<List<Assignment>> ClaimWithId(string agentId, int max, string claimId, string? sessionId = null) =>
        [.. await Store.ClaimAsync(new ClaimRequest(agentId, max) { ClaimId = claimId, SessionId = sessionId })];
}
