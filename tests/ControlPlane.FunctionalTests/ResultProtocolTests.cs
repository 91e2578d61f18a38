using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Xunit;
using static ControlPlane.FunctionalTests.FunctionalCluster;
using static ControlPlane.FunctionalTests.FunctionalSpecs;

namespace ControlPlane.FunctionalTests;

/// <summary>
/// Results across store outages and scheduler crashes, and agents stopped while assignments are on the way. The
/// tests that restart or pause Redis own their redis-server; the others share the collection's.
/// </summary>
[Collection(FunctionalTestGroup.Name)]
public sealed class ResultProtocolTests(RedisServerFixture redis, Xunit.Abstractions.ITestOutputHelper log)
{
    [Fact]
    public async Task RedisRestartedMidStepAndAsItCompletes_StepSucceedsAtAttemptOne()
    {
        await using var store = new RedisServer(appendOnly: true);
        await store.StartAsync();

        // A lease longer than both outages together, so only a refused report, never an expired lease, could cost an attempt.
        // Heartbeats 20 s apart: an agent whose heartbeats go unaccepted for two intervals moves to another replica, and
        // this test watches the reports wait in the one scheduler, so the agent must stay on its stream through an outage.
        await using var cluster = await FunctionalCluster.StartAsync(store.Configuration, lease: TimeSpan.FromSeconds(60), heartbeat: TimeSpan.FromSeconds(20));
        var agent = await cluster.StartAgentAsync("agent-a", slots: 1);
        var finish = cluster.Path2("finish");
        var work = $"i=0; while [ ! -f '{finish}' ]; do i=$((i+1)); echo \"::cp progress $((i % 100)) tick $i\"; sleep 0.1; done; printf done > \"$CP_OUTPUT_FILE\"";
        var run = (await cluster.Client.SubmitRunAsync(Spec("outage", Shell("work", work)))).Run;
        await cluster.WaitForRunAsync(run.Id, r => r.Steps[0] is { State: StepState.Running, Progress: > 0 }, "work reporting progress");

        // Outage 1, mid-step: progress reports wait in the scheduler far longer than it used to retry before refusing them.
        await store.StopAsync();
        await WaitForOutageTriesAsync(cluster.Scheduler, 10, occurrence: 1);
        await store.StartAsync();
        var resumed = await cluster.WaitForRunAsync(run.Id, r => Tick(r) > 0, "progress stored after Redis restarted");
        var tickAfterFirst = Tick(resumed);
        await cluster.WaitForRunAsync(run.Id, r => Tick(r) > tickAfterFirst, "progress flowing again");

        // Outage 2, as the step completes: its result waits in the scheduler until Redis is back.
        await store.StopAsync();
        await WaitForOutageTriesAsync(cluster.Scheduler, 1, occurrence: 2);
        File.WriteAllText(finish, "");
        await agent.WaitForLineAsync(l => l.Contains("/work attempt 1 succeeded", StringComparison.Ordinal), FunctionalCluster.Timeout, "work finished");
        await WaitForOutageTriesAsync(cluster.Scheduler, 10, occurrence: 2);
        await store.StartAsync();

        var final = await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);
        var step = StepOf(final, "work");
        Assert.Equal(1, step.Attempt);
        Assert.Equal(1, Succeeded(step));
        Assert.Equal("done", (await cluster.Client.GetStepOutputAsync(run.Id, "work")).Data.ToStringUtf8());
        Assert.DoesNotContain("rejected", agent.Output, StringComparison.Ordinal);
        Assert.Empty(await cluster.UsedSlotsAsync());
    }

    [Fact]
    public async Task SchedulerKilledAfterReceivingAResultBeforeStoringIt_NextSchedulerStoresItAtAttemptOne()
    {
        await using var store = new RedisServer();
        await store.StartAsync();

        // No lease may expire while the scheduler is down: the step must keep attempt 1.
        await using var cluster = await FunctionalCluster.StartAsync(store.Configuration, lease: TimeSpan.FromSeconds(120));
        var agent = await cluster.StartAgentAsync("agent-a", slots: 1);
        var finish = cluster.Path2("finish");
        var run = (await cluster.Client.SubmitRunAsync(Spec("crash", Shell("hold", $"while [ ! -f '{finish}' ]; do sleep 0.05; done; printf kept > \"$CP_OUTPUT_FILE\"")))).Run;
        await cluster.WaitForRunAsync(run.Id, r => r.Steps[0].State == StepState.Running, "hold running");

        // Redis takes no writes: the scheduler receives the result, and its store call waits.
        await store.CliAsync("CLIENT", "PAUSE", "60000", "WRITE");
        File.WriteAllText(finish, "");
        await agent.WaitForLineAsync(l => l.Contains("/hold attempt 1 succeeded", StringComparison.Ordinal), FunctionalCluster.Timeout, "hold finished");
        await cluster.CrashAndRestartSchedulerAsync(whileDown: async () =>
        {
            // Redis drops the dead scheduler's connections, and with them its unstored call, before it takes writes again.
            await WaitForClientsAsync(store, 1);
            await store.CliAsync("CLIENT", "UNPAUSE");
        });
        await WaitConnectedAsync(agent, 2);

        var final = await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);
        var step = StepOf(final, "hold");
        Assert.Equal(1, step.Attempt);
        Assert.Equal(1, Succeeded(step));
        Assert.Equal("kept", (await cluster.Client.GetStepOutputAsync(run.Id, "hold")).Data.ToStringUtf8());
        Assert.Contains("sending 1 unacknowledged results again", agent.Output, StringComparison.Ordinal);
        Assert.Empty(await cluster.UsedSlotsAsync());
    }

    [Fact]
    public async Task AgentTerminatedWhileAssignmentsAreOnTheWay_NoRunFailsAndNoAttemptIsCounted()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis, lease: TimeSpan.FromSeconds(60));
        var leaving = await cluster.StartAgentAsync("agent-a", slots: 4);
        await cluster.StartAgentAsync("agent-b", slots: 4);

        // While agent-a is stopped, assignments for its free slots wait in its socket; the SIGTERM (what systemctl
        // restart sends) is handled when it resumes, together with them. No step may retry: one lost attempt fails its run.
        await leaving.SignalAsync("STOP");
        var steps = Enumerable.Range(0, 24).Select(i => Shell($"s{i}", "sleep 0.2; printf ok > \"$CP_OUTPUT_FILE\"")).ToArray();
        var run = (await cluster.Client.SubmitRunAsync(Spec("restart", steps))).Run;
        await cluster.WaitForRunAsync(run.Id, r => r.Steps.Any(s => s is { AgentId: "agent-a", State: StepState.Assigned }), "assignments sent to the stopped agent-a");
        await leaving.SignalAsync("TERM");
        await leaving.SignalAsync("CONT");

        var final = await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);
        var exit = await leaving.WaitForExitAsync(FunctionalCluster.Timeout);
        var declined = final.Steps.Count(s => s.History.Any(h => h.Reason.Contains("declined by agent agent-a", StringComparison.Ordinal)));
        log.WriteLine($"{declined} of the steps sent to agent-a were declined and ran elsewhere");
        Assert.Equal(0, exit);
        Assert.All(final.Steps, s => Assert.Equal(1, s.Attempt));
        Assert.All(final.Steps, s => Assert.Equal(1, Succeeded(s)));
        Assert.DoesNotContain(final.Steps.SelectMany(s => s.History), h => h.ToState is "STEP_STATE_FAILED" or "STEP_STATE_RETRY_WAIT");
        Assert.Empty(await cluster.UsedSlotsAsync());
    }

    private static int Tick(Run run) =>
        int.TryParse(run.Steps[0].ProgressMessage.Replace("tick ", "", StringComparison.Ordinal), out var tick) ? tick : 0;

    /// <summary>Waits for the scheduler's <paramref name="occurrence"/>-th log line saying reports waited <paramref name="tries"/> tries for the store.</summary>
    private static async Task WaitForOutageTriesAsync(ObservedProcess scheduler, int tries, int occurrence)
    {
        var seen = 0;
        var text = $"reports wait for it (try {tries})";
        await scheduler.WaitForLineAsync(l => l.Contains(text, StringComparison.Ordinal) && ++seen >= occurrence, FunctionalCluster.Timeout, $"'{text}' #{occurrence}");
    }

    /// <summary>Waits until Redis has exactly <paramref name="count"/> client connections (the asking redis-cli included).</summary>
    private static async Task WaitForClientsAsync(RedisServer store, int count)
    {
        using var cts = new CancellationTokenSource(FunctionalCluster.Timeout);
        while (true)
        {
            var clients = (await store.CliAsync("CLIENT", "LIST")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
            if (clients == count)
            {
                return;
            }

            // Redis notices a closed connection on its next event loop pass; there is no event to await from outside.
            await Task.Delay(TimeSpan.FromMilliseconds(50), cts.Token);
        }
    }
}
