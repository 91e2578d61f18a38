using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Xunit;
using static ControlPlane.FunctionalTests.FunctionalCluster;
using static ControlPlane.FunctionalTests.FunctionalSpecs;

namespace ControlPlane.FunctionalTests;

/// <summary>Two scheduler replicas on one Redis: an agent is not pinned to the one it first reached.</summary>
[Collection(FunctionalTestGroup.Name)]
public sealed class ReplicaTests(RedisServerFixture redis)
{
    [Fact]
    public async Task ReplicaKilled_AgentMovesToTheOtherReplica_StepFinishesAtAttempt1AndAgentIsConnected()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis, lease: TimeSpan.FromSeconds(10));
        var (survivor, survivorPort) = await cluster.StartReplicaAsync();
        var agent = await cluster.StartAgentAsync("agent-1", slots: 1, schedulers: $"{cluster.Address},http://127.0.0.1:{survivorPort}");
        var dir = cluster.SharedDir;
        var spec = Spec("moves", Shell("s", $"while [ ! -f '{dir}/release' ]; do sleep 0.05; done; printf done > \"$CP_OUTPUT_FILE\""));
        spec.Steps[0].KeepOutput = true;
        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        await cluster.WaitForRunAsync(run.Id, r => r.Steps[0].State == StepState.Running, "the step running");

        // kill -9 of the replica the agent is connected to: nobody ends its stream, the agent must find the other one.
        await cluster.Scheduler.SignalAsync("KILL");
        await cluster.Scheduler.Exited.WaitAsync(FunctionalCluster.Timeout);
        cluster.UseReplica(survivor, survivorPort);
        await WaitConnectedAsync(agent, 2);
        var agentsAfterMove = await cluster.Client.ListAgentsAsync();
        File.WriteAllText(Path.Combine(dir, "release"), "");

        var final = await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);
        Assert.Equal(AgentState.Connected, agentsAfterMove.Single(a => a.AgentId == "agent-1").State);
        Assert.Equal(1, final.Steps[0].Attempt);
        Assert.Equal(1, Succeeded(final.Steps[0]));
        Assert.Equal("done", (await cluster.Client.GetStepOutputAsync(run.Id, "s")).Data.ToStringUtf8());
        Assert.Empty(await cluster.UsedSlotsAsync());
    }
}
