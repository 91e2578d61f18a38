using ControlPlane.V1;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

/// <summary>Agent sessions: each accepted Hello opens one, and only the newest session's end disconnects the agent.</summary>
public abstract partial class RunStoreContractTests
{
    [Fact]
    public async Task DisconnectAgent_OlderSessionAfterReconnect_AgentStaysConnectedAndClaims()
    {
        await Store.SubmitRunAsync(Run(Shell("a")), null);
        var first = await Connect("agent-1", slots: 1);
        var second = await Connect("agent-1", slots: 1);

        // The replica that served the first stream notices its end after the agent reconnected elsewhere.
        await Store.DisconnectAgentAsync("agent-1", first.SessionId);

        Assert.NotEqual(first.SessionId, second.SessionId);
        Assert.Equal(AgentState.Connected, (await Store.ListAgentsAsync()).Single(a => a.AgentId == "agent-1").State);
        Assert.Single(await Claim("agent-1", 1));
    }

    [Fact]
    public async Task ConnectAgent_NewSessionWithoutAnAssignmentItNeverReceived_StepIsReadyAgainAtTheSameAttempt()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a"), Shell("b"), Shell("c")), null)).Run;
        await Connect("agent-1", slots: 3);
        var claimed = (await Claim("agent-1", 3)).OrderBy(a => a.StepId, StringComparer.Ordinal).ToList();
        await Store.ReportAsync([new AttemptReport(Ref(claimed[0]), new ConnectRequest { StepStarted = new StepStarted { FencingToken = claimed[0].FencingToken } })]);

        // The agent reconnects holding only "b": "a" runs (RUNNING, not re-announced: its lease decides), "c" never
        // reached it (sent on a dead stream).
        await Connect("agent-1", slots: 3, running: [Ref(claimed[1])]);
        var after = await Store.GetRunAsync(run.Id);
        await Connect("agent-2", slots: 3);
        var again = Assert.Single(await Claim("agent-2", 3));

        Assert.Equal(StepState.Running, StepOf(after!, "a").State);
        Assert.Equal(StepState.Assigned, StepOf(after!, "b").State);
        Assert.Equal(StepState.Ready, StepOf(after!, "c").State);
        Assert.Equal(0, StepOf(after!, "c").Attempt);
        Assert.Contains(StepOf(after!, "c").History, h => h.Reason.Contains(AgentSession.UndeliveredReason, StringComparison.Ordinal));
        Assert.Equal(("c", 1), (again.StepId, again.Attempt));
        Assert.Equal(2, (await Store.GetStatsAsync()).Slots.Single(s => s.Kind == "agent" && s.Name == "agent-1").Used);
    }

    [Fact]
    public async Task ConnectAgent_ReRegistrationOfASupersededSession_RefusedAndTheNewSessionKeepsTheAgent()
    {
        await Store.SubmitRunAsync(Run(Shell("a")), null);
        var first = await Connect("agent-1", slots: 1);
        var second = await Connect("agent-1", slots: 1);

        // The replica holding the first stream handles its slot change late, after the agent reconnected elsewhere.
        var ex = await Assert.ThrowsAsync<RunStoreException>(() => Store.ConnectAgentAsync(new AgentRegistration(
            "agent-1", "h", ["shell"], [], new Dictionary<string, string>(), 0, [], []) { SessionId = first.SessionId }));
        await Store.DisconnectAgentAsync("agent-1", first.SessionId);

        Assert.Equal(RunStoreError.FailedPrecondition, ex.Error);
        Assert.Contains("superseded", ex.Message, StringComparison.Ordinal);
        Assert.Equal(AgentState.Connected, (await Store.ListAgentsAsync()).Single(a => a.AgentId == "agent-1").State);
        Assert.Single(await Store.ClaimAsync(new ClaimRequest("agent-1", 1) { SessionId = second.SessionId }));
    }

    [Fact]
    public async Task ConnectAgent_ReRegistrationWithItsSession_ReleasesNothing()
    {
        await Store.SubmitRunAsync(Run(Shell("a")), null);
        var session = await Connect("agent-1", slots: 1);
        var claimed = Assert.Single(await Claim("agent-1", 1));

        // A slot change re-registers within the session; an assignment on its way is not yet listed there.
        await Store.ConnectAgentAsync(new AgentRegistration(
            "agent-1", "h", ["shell"], [], new Dictionary<string, string>(), 0, [], []) { SessionId = session.SessionId });
        var run = await Store.GetRunAsync(claimed.RunId);

        Assert.Equal(StepState.Assigned, StepOf(run!, "a").State);
    }

    [Fact]
    public async Task DisconnectAgent_CurrentSession_AgentIsDisconnected()
    {
        var session = await Connect("agent-1", slots: 1);

        await Store.DisconnectAgentAsync("agent-1", session.SessionId);

        Assert.Equal(AgentState.Disconnected, (await Store.ListAgentsAsync()).Single(a => a.AgentId == "agent-1").State);
    }

    [Fact]
    public async Task ConnectAgent_ReRegistrationWithItsSession_KeepsTheSession()
    {
        var session = await Connect("agent-1", slots: 1);

        var again = await Store.ConnectAgentAsync(new AgentRegistration(
            "agent-1", "h", ["shell"], [], new Dictionary<string, string>(), 2, [], []) { SessionId = session.SessionId });

        Assert.Equal(session.SessionId, again.SessionId);
    }

    [Fact]
    public async Task ListAgents_NoContactForALease_ShowsDisconnectedUntilHeardFromAgain()
    {
        await Store.SubmitRunAsync(Run(Shell("a")), null);
        await Connect("agent-1", slots: 1);

        // The replica serving the agent died: nobody ends its session, nobody renews for it.
        Time.Advance(Options.LeaseDuration + TimeSpan.FromSeconds(1));
        var silent = (await Store.ListAgentsAsync()).Single(a => a.AgentId == "agent-1");
        await Store.RenewLeasesAsync("agent-1", []);
        var heard = (await Store.ListAgentsAsync()).Single(a => a.AgentId == "agent-1");

        Assert.Equal(AgentState.Disconnected, silent.State);
        Assert.Equal(AgentState.Connected, heard.State);
        Assert.Single(await Claim("agent-1", 1));
    }

    [Fact]
    public async Task ListAgents_ClaimAfterALongQuietSpell_CountsAsContact()
    {
        await Connect("agent-1", slots: 1);
        Time.Advance(Options.LeaseDuration / 2);
        await Claim("agent-1", 1);

        Time.Advance((Options.LeaseDuration / 2) + TimeSpan.FromSeconds(1));

        Assert.Equal(AgentState.Connected, (await Store.ListAgentsAsync()).Single(a => a.AgentId == "agent-1").State);
    }
}
