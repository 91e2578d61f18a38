using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Xunit;
using static ControlPlane.FunctionalTests.FunctionalCluster;
using static ControlPlane.FunctionalTests.FunctionalSpecs;

namespace ControlPlane.FunctionalTests;

/// <summary>
/// Leases across a store outage: while Redis is down no agent can renew a lease, so the time it was down must not count
/// against the leases of the attempts that kept running. The test owns its redis-server, which it stops and restarts.
/// </summary>
[Collection(FunctionalTestGroup.Name)]
public sealed class StoreOutageLeaseTests
{
    [Fact]
    public async Task RedisDownLongerThanALease_StepRunningAcrossIt_FinishesAtAttemptOne()
    {
        await using var store = new RedisServer(appendOnly: true);
        await store.StartAsync();

        // A 10 s lease renewed every second; the outage below lasts at least eleven missed renewals, so every lease
        // deadline passes while Redis is down, and a freeze (at most one lease) leaves the agent several heartbeats.
        await using var cluster = await FunctionalCluster.StartAsync(store.Configuration, lease: TimeSpan.FromSeconds(10));
        var agent = await cluster.StartAgentAsync("agent-a", slots: 1);
        var finish = cluster.Path2("finish");
        var work = $"while [ ! -f '{finish}' ]; do sleep 0.1; done; printf done > \"$CP_OUTPUT_FILE\"";
        var run = (await cluster.Client.SubmitRunAsync(Spec("outage", Shell("work", work)))).Run;
        await cluster.WaitForRunAsync(run.Id, r => r.Steps[0].State == StepState.Running, "work running");

        await store.StopAsync();
        await WaitForRenewalFailuresAsync(cluster.Scheduler, "agent-a", 11);

        // The agent pauses while Redis comes back, so the replica's first maintenance step after the outage is decided
        // before the agent's next heartbeat (which would otherwise race it and renew the lease first). The pause is far
        // shorter than the half lease after which the step's watchdog would take the agent for frozen.
        await agent.SignalAsync("STOP");
        await store.StartAsync();
        await cluster.Scheduler.WaitForLineAsync(
            l => l.Contains("Maintenance: ", StringComparison.Ordinal) || l.Contains("leases frozen", StringComparison.Ordinal),
            FunctionalCluster.Timeout, "its first maintenance step after the outage");
        await agent.SignalAsync("CONT");
        File.WriteAllText(finish, "");

        var final = await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);
        var step = StepOf(final, "work");
        Assert.True(step.Attempt == 1, $"the step ran {step.Attempt} attempts: {Describe(final)}");
        Assert.Equal(1, Succeeded(step));
        Assert.DoesNotContain("lease expired", agent.Output, StringComparison.Ordinal);
        Assert.Empty(await cluster.UsedSlotsAsync());
    }

    /// <summary>Waits for the scheduler's <paramref name="count"/>-th failed lease renewal of the agent.</summary>
    private static async Task WaitForRenewalFailuresAsync(ObservedProcess scheduler, string agentId, int count)
    {
        var seen = 0;
        var text = $"Lease renewal for agent {agentId} failed";
        await scheduler.WaitForLineAsync(l => l.Contains(text, StringComparison.Ordinal) && ++seen >= count, FunctionalCluster.Timeout, $"'{text}' #{count}");
    }
}
