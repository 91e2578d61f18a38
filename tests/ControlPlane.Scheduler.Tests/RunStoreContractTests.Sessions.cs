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
