using ControlPlane.V1;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

/// <summary>Agents that went away are pruned by maintenance after <see cref="RunStoreOptions.AgentRetention"/>.</summary>
public abstract partial class RunStoreContractTests
{
    [Fact]
    public async Task Maintenance_AgentDisconnectedLongerThanItsRetention_Pruned()
    {
        var gone = await Connect("gone", slots: 1);
        await Connect("quiet", slots: 1);
        await Store.DisconnectAgentAsync("gone", gone.SessionId);

        Time.Advance(Options.AgentRetention - TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, (await Store.RunMaintenanceAsync(100)).AgentsPruned);
        Assert.Equal(["gone", "quiet"], (await Store.ListAgentsAsync()).Select(a => a.AgentId).Order());
        Time.Advance(TimeSpan.FromMilliseconds(1));

        Assert.Equal(1, (await Store.RunMaintenanceAsync(100)).AgentsPruned);
        Assert.Equal(["quiet"], (await Store.ListAgentsAsync()).Select(a => a.AgentId));
        await Connect("gone", slots: 2);
        Assert.Equal(AgentState.Connected, (await Store.ListAgentsAsync()).Single(a => a.AgentId == "gone").State);
    }
}
