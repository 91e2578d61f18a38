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

    [Fact]
    public async Task ReplicaFrozenPastTheLease_ItsAgentStopsTheStepBeforeAnotherAttemptStarts()
    {
        // A 6 s lease. Replica A is SIGSTOPped: its agent's stream stays open (nothing closes it) and its heartbeats are
        // written, but no store renews them. The other replica's reaper gives the step to the agent connected to it.
        await using var cluster = await FunctionalCluster.StartAsync(redis, lease: TimeSpan.FromSeconds(6));
        var (other, otherPort) = await cluster.StartReplicaAsync();
        await cluster.StartAgentAsync("agent-a", slots: 1);
        var log = cluster.Path2("attempts.log");
        var release = cluster.Path2("release");
        var spec = Spec("frozen-replica", Shell("s",
            $"echo \"start $CP_ATTEMPT\" >> '{log}'; trap 'echo \"end $CP_ATTEMPT\" >> \"{log}\"; exit 1' TERM; " +
            $"while [ ! -f '{release}' ]; do sleep 0.05; done; printf \"done $CP_ATTEMPT\" > \"$CP_OUTPUT_FILE\""));
        spec.Steps[0].KeepOutput = true;
        spec.Steps[0].Retry = new RetryPolicy { MaxAttempts = 3 };
        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        await cluster.WaitForRunAsync(run.Id, r => r.Steps[0].State == StepState.Running, "the step running");
        await cluster.StartAgentAsync("agent-b", slots: 1, schedulers: $"http://127.0.0.1:{otherPort}");

        var frozen = cluster.Scheduler;
        await frozen.SignalAsync("STOP");
        try
        {
            cluster.UseReplica(other, otherPort);
            await cluster.WaitForRunAsync(run.Id, r => r.Steps[0].Attempt == 2 && r.Steps[0].State == StepState.Running, "attempt 2 running on agent-b");
            await FunctionalCluster.WaitForFileAsync(log, "the attempts log");
            var lines = await WaitForLinesAsync(log, l => l == "start 2");

            // Attempt 1 ended (its agent stopped it at its lease's end) before attempt 2 began.
            var end1 = lines.IndexOf("end 1");
            Assert.True(end1 >= 0 && end1 < lines.IndexOf("start 2"), "attempt 1 still ran when attempt 2 started: " + string.Join(" | ", lines));
        }
        finally
        {
            await cluster.Agents["agent-a"].SignalAsync("KILL");
            await frozen.SignalAsync("CONT");
        }

        File.WriteAllText(release, "");
        var final = await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);
        Assert.Equal(1, Succeeded(final.Steps[0]));
        Assert.Equal("done 2", (await cluster.Client.GetStepOutputAsync(run.Id, "s")).Data.ToStringUtf8());
    }

    [Fact]
    public async Task ReplicaFrozen_AgentThatKnowsBothReplicas_MovesBeforeTheLeaseEndsAndTheStepFinishesAtAttempt1()
    {
        // The frozen replica keeps the agent's stream open but accepts no heartbeat: after two heartbeat intervals the
        // agent moves to the other replica and re-announces its attempt there, well inside the 6 s lease.
        await using var cluster = await FunctionalCluster.StartAsync(redis, lease: TimeSpan.FromSeconds(6));
        var (other, otherPort) = await cluster.StartReplicaAsync();
        var agent = await cluster.StartAgentAsync("agent-1", slots: 1, schedulers: $"{cluster.Address},http://127.0.0.1:{otherPort}");
        var release = cluster.Path2("release");
        var spec = Spec("moves-off-frozen", Shell("s", $"while [ ! -f '{release}' ]; do sleep 0.05; done; printf \"done $CP_ATTEMPT\" > \"$CP_OUTPUT_FILE\""));
        spec.Steps[0].KeepOutput = true;
        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        await cluster.WaitForRunAsync(run.Id, r => r.Steps[0].State == StepState.Running, "the step running");

        var frozen = cluster.Scheduler;
        await frozen.SignalAsync("STOP");
        try
        {
            cluster.UseReplica(other, otherPort);
            await WaitConnectedAsync(agent, 2);

            // Two more leases: the attempt would have been given away by now had its lease not been renewed.
            await Task.Delay(TimeSpan.FromSeconds(12));
            File.WriteAllText(release, "");
            var final = await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);

            Assert.Equal(1, final.Steps[0].Attempt);
            Assert.Equal(1, Succeeded(final.Steps[0]));
            Assert.Equal("done 1", (await cluster.Client.GetStepOutputAsync(run.Id, "s")).Data.ToStringUtf8());
        }
        finally
        {
            await frozen.SignalAsync("CONT");
        }
    }

    private static async Task<List<string>> WaitForLinesAsync(string path, Func<string, bool> until)
    {
        var deadline = DateTime.UtcNow + FunctionalCluster.Timeout;
        while (true)
        {
            var lines = File.ReadAllLines(path).ToList();
            if (lines.Any(until) || DateTime.UtcNow > deadline)
            {
                return lines;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50));
        }
    }
}
