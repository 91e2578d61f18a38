using System.Globalization;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Xunit;
using static ControlPlane.FunctionalTests.FunctionalSpecs;

namespace ControlPlane.FunctionalTests;

/// <summary>A step's processes never outlive the agent that runs them.</summary>
[Collection(FunctionalTestGroup.Name)]
public sealed class OrphanTests(RedisServerFixture redis)
{
    // Generous: the step gets SIGTERM as soon as its agent is gone and SIGKILL after the agent's 2 s kill grace.
    private static readonly TimeSpan DeathDeadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task AgentKilled_RunningShellStep_ItsWholeProcessTreeDies()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis, lease: TimeSpan.FromSeconds(120));
        var agent = await cluster.StartAgentAsync("agent-a", slots: 1);
        var pids = cluster.Path2("pids");

        // The shell and a background job it waits on; the job ignores SIGTERM, so only SIGKILL ends it.
        var spec = Spec("orphans", Shell("s", $"sh -c 'trap \"\" TERM; exec sleep 300' & echo \"$$ $!\" > '{pids}.tmp'; mv '{pids}.tmp' '{pids}'; wait"));
        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        await FunctionalCluster.WaitForFileAsync(pids, "the step's pids");
        var tree = File.ReadAllText(pids).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        Assert.All(tree, pid => Assert.True(ProcessProbe.IsRunning(pid), $"step process {pid} is not running"));

        try
        {
            await agent.SignalAsync("KILL");
            await agent.Exited.WaitAsync(FunctionalCluster.Timeout);

            // Polled: these are not the test's children, so nothing signals their end.
            var deadline = DateTime.UtcNow + DeathDeadline;
            while (tree.Any(pid => ProcessProbe.IsRunning(pid)) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100));
            }

            Assert.All(tree, pid => Assert.False(ProcessProbe.IsRunning(pid), $"step process {pid} outlived its agent by {DeathDeadline}"));
            Assert.Equal(RunState.Running, (await cluster.Client.GetRunAsync(run.Id)).State);
        }
        finally
        {
            foreach (var pid in tree.Where(pid => ProcessProbe.IsRunning(pid)))
            {
                System.Diagnostics.Process.GetProcessById(pid).Kill();
            }
        }
    }

    [Fact]
    public async Task AgentFrozen_PastHalfItsLease_ItsStepIsKilledBeforeAnotherAttemptRuns()
    {
        // A 6 s lease: a stopped agent's step is killed once the agent has been silent for 3 s, before the lease ends.
        await using var cluster = await FunctionalCluster.StartAsync(redis, lease: TimeSpan.FromSeconds(6));
        var agent = await cluster.StartAgentAsync("agent-a", slots: 1);
        var pids = cluster.Path2("frozen-pids");
        var spec = Spec("frozen", Shell("s", $"sleep 300 & echo \"$$ $!\" > '{pids}.tmp'; mv '{pids}.tmp' '{pids}'; wait"));
        await cluster.Client.SubmitRunAsync(spec);
        await FunctionalCluster.WaitForFileAsync(pids, "the step's pids");
        var tree = File.ReadAllText(pids).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray();

        await agent.SignalAsync("STOP");
        try
        {
            // The agent stays stopped throughout: only the step's own watchdog can end it.
            var deadline = DateTime.UtcNow + DeathDeadline;
            while (tree.Any(pid => ProcessProbe.IsRunning(pid)) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100));
            }

            Assert.All(tree, pid => Assert.False(ProcessProbe.IsRunning(pid), $"step process {pid} of a stopped agent still ran after {DeathDeadline}"));
        }
        finally
        {
            await agent.SignalAsync("CONT");
            foreach (var pid in tree.Where(pid => ProcessProbe.IsRunning(pid)))
            {
                System.Diagnostics.Process.GetProcessById(pid).Kill();
            }
        }
    }
}
