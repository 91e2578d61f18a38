using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Xunit;
using static ControlPlane.FunctionalTests.FunctionalCluster;
using static ControlPlane.FunctionalTests.FunctionalSpecs;

namespace ControlPlane.FunctionalTests;

[Collection(FunctionalTestGroup.Name)]
public sealed class DagAndCrashTests(RedisServerFixture redis, Xunit.Abstractions.ITestOutputHelper log)
{
    [Fact]
    public async Task SubmitRun_ThreeLevelDagOnTwoAgents_OutputsFlowAndEverySlotIsReleased()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis);
        await cluster.StartAgentAsync("agent-a", slots: 1);
        await cluster.StartAgentAsync("agent-b", slots: 1);
        var dir = cluster.SharedDir;

        // b1 and b2 each wait until both have started, so with one slot per agent they must run on different agents.
        var middle = $"touch '{dir}/started-'$CP_STEP_ID; while [ ! -f '{dir}/started-b1' ] || [ ! -f '{dir}/started-b2' ]; do sleep 0.05; done; " +
                     "printf '%s(%s)' $CP_STEP_ID \"$(cat \"$CP_INPUTS_DIR/a\")\" > \"$CP_OUTPUT_FILE\"";
        var spec = Spec("dag",
            Shell("a", "printf seed > \"$CP_OUTPUT_FILE\""),
            Shell("b1", middle, "a").WithTimeout(TimeSpan.FromSeconds(30)),
            Shell("b2", middle, "a").WithTimeout(TimeSpan.FromSeconds(30)),
            Shell("c", "printf 'c[%s+%s]' \"$(cat \"$CP_INPUTS_DIR/b1\")\" \"$(cat \"$CP_INPUTS_DIR/b2\")\" > \"$CP_OUTPUT_FILE\"", "b1", "b2"));

        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        var final = await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);

        var output = await cluster.Client.GetStepOutputAsync(run.Id, "c");
        Assert.Equal("c[b1(seed)+b2(seed)]", output.Data.ToStringUtf8());
        Assert.NotEqual(StepOf(final, "b1").AgentId, StepOf(final, "b2").AgentId);
        Assert.All(final.Steps, s => Assert.Equal(1, Succeeded(s)));
        Assert.Empty(await cluster.UsedSlotsAsync());
    }

    [Fact]
    public async Task AgentKilled_CheckpointingStep_ResumesOnTheOtherAgentFromItsLastCheckpoint()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis, lease: TimeSpan.FromSeconds(3));
        await cluster.StartAgentAsync("agent-a", slots: 1);
        await cluster.StartAgentAsync("agent-b", slots: 1);

        // Counts to 5, checkpointing each unit; the first attempt stops at 3 and holds until its agent is gone.
        const string work = """
            i=0
            if [ -n "$CP_CHECKPOINT_FILE" ] && [ -f "$CP_CHECKPOINT_FILE" ]; then i=$(cat "$CP_CHECKPOINT_FILE"); fi
            start=$i
            while [ $i -lt 5 ]; do
              i=$((i+1))
              echo $i > "$CP_WORK_DIR/ck"
              echo "::cp checkpoint $CP_WORK_DIR/ck"
              echo "::cp progress $((i*20)) unit $i"
              if [ "$CP_ATTEMPT" = 1 ] && [ $i -eq 3 ]; then
                while kill -0 $PPID 2>/dev/null; do sleep 0.1; done
                exit 1
              fi
            done
            printf 'resumed-from=%s attempt=%s input=%s' "$start" "$CP_ATTEMPT" "$(cat "$CP_INPUTS_DIR/prep")" > "$CP_OUTPUT_FILE"
            """;
        var spec = Spec("resume",
            Shell("prep", "printf seed > \"$CP_OUTPUT_FILE\""),
            Shell("work", work, "prep"),
            Shell("final", "cat \"$CP_INPUTS_DIR/work\" > \"$CP_OUTPUT_FILE\"", "work"));
        spec.Steps[2].KeepOutput = true;
        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;

        var atThree = await cluster.WaitForRunAsync(run.Id, r => StepOf(r, "work") is { HasCheckpoint: true, Progress: >= 60 }, "work checkpointed unit 3");
        var victim = StepOf(atThree, "work").AgentId;
        var survivor = victim == "agent-a" ? "agent-b" : "agent-a";
        await cluster.Agents[victim].SignalAsync("KILL");

        var final = await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);
        var step = StepOf(final, "work");
        Assert.Equal("resumed-from=3 attempt=2 input=seed", (await cluster.Client.GetStepOutputAsync(run.Id, "final")).Data.ToStringUtf8());
        Assert.Equal(2, step.Attempt);
        Assert.Equal(survivor, step.AgentId);
        Assert.Equal(1, Succeeded(step));
        Assert.Empty(await cluster.UsedSlotsAsync());
    }

    [Fact]
    public async Task SchedulerKilledMidRun_RestartedOnTheSamePort_RunCompletesWithNothingLostAndNoSlotHeld()
    {
        // No lease may expire while the scheduler is down, even on a loaded machine: every step must keep attempt 1.
        await using var cluster = await FunctionalCluster.StartAsync(redis, lease: TimeSpan.FromSeconds(120));
        var agentA = await cluster.StartAgentAsync("agent-a", slots: 2);
        var agentB = await cluster.StartAgentAsync("agent-b", slots: 2);
        var dir = cluster.SharedDir;

        // Each middle step holds until the test releases it, so all three are mid-flight when the scheduler dies.
        var hold = $"touch '{dir}/running-'$CP_STEP_ID; while [ ! -f '{dir}/release-'$CP_STEP_ID ]; do sleep 0.05; done; " +
                   "printf '%s<%s>' $CP_STEP_ID \"$(cat \"$CP_INPUTS_DIR/a\")\" > \"$CP_OUTPUT_FILE\"";
        var spec = Spec("restart",
            Shell("a", "printf A > \"$CP_OUTPUT_FILE\""),
            Shell("b1", hold, "a"),
            Shell("b2", hold, "a"),
            Shell("b3", hold, "a"),
            Shell("c", "cat \"$CP_INPUTS_DIR/b1\" \"$CP_INPUTS_DIR/b2\" \"$CP_INPUTS_DIR/b3\" > \"$CP_OUTPUT_FILE\"", "b1", "b2", "b3"));
        spec.Steps[4].KeepOutput = true;
        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        await cluster.WaitForRunAsync(run.Id, r => r.Steps.Where(s => s.Id.StartsWith('b')).All(s => s.State == StepState.Running), "b1-b3 running");

        // b1 finishes while no scheduler is up: its agent must keep the result and deliver it after reconnecting.
        await cluster.CrashAndRestartSchedulerAsync(whileDown: async () =>
        {
            File.WriteAllText(Path.Combine(dir, "release-b1"), "");
            static bool B1Done(string l) => l.Contains("/b1 attempt 1 succeeded", StringComparison.Ordinal);
            var done = await Task.WhenAny(
                agentA.WaitForLineAsync(B1Done, FunctionalCluster.Timeout, "b1 finished"),
                agentB.WaitForLineAsync(B1Done, FunctionalCluster.Timeout, "b1 finished"));
            Assert.Contains("b1", await done, StringComparison.Ordinal);
        });
        await WaitConnectedAsync(agentA, 2);
        await WaitConnectedAsync(agentB, 2);
        File.WriteAllText(Path.Combine(dir, "release-b2"), "");
        File.WriteAllText(Path.Combine(dir, "release-b3"), "");

        var final = await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);
        Assert.Equal("b1<A>b2<A>b3<A>", (await cluster.Client.GetStepOutputAsync(run.Id, "c")).Data.ToStringUtf8());
        Assert.All(final.Steps, s => Assert.Equal(1, Succeeded(s)));
        Assert.All(final.Steps, s => Assert.Equal(1, s.Attempt));
        Assert.Empty(await cluster.UsedSlotsAsync());
    }

    [Fact]
    public async Task AgentStopped_LosesItsLease_ItsStepIsKilledAndItsLateReportRefused()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis, lease: TimeSpan.FromSeconds(3));
        var slow = await cluster.StartAgentAsync("agent-slow", slots: 1);
        var dir = cluster.SharedDir;
        var command = $"if [ \"$CP_ATTEMPT\" = 1 ]; then while [ ! -f '{dir}/release' ]; do sleep 0.05; done; " +
                      $"printf 'late attempt 1' > \"$CP_OUTPUT_FILE\"; touch '{dir}/done-1'; exit 0; fi; " +
                      "printf 'attempt %s' $CP_ATTEMPT > \"$CP_OUTPUT_FILE\"";
        var spec = Spec("fenced", Shell("s", command));
        spec.Steps[0].KeepOutput = true;
        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        var running = await cluster.WaitForRunAsync(run.Id, r => r.Steps[0].State == StepState.Running, "attempt 1 running");
        Assert.Equal("agent-slow", running.Steps[0].AgentId);

        // Frozen, the agent cannot heartbeat: its lease expires and the step goes to the fresh agent.
        await slow.SignalAsync("STOP");
        await cluster.StartAgentAsync("agent-fresh", slots: 1);
        var final = await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);
        Assert.Equal("agent-fresh", final.Steps[0].AgentId);

        // Attempt 1 cannot finish beside attempt 2: its watchdog heard nothing from the frozen agent for half the lease
        // and killed it. Once thawed, the agent reports that attempt's end, and the report is refused.
        File.WriteAllText(Path.Combine(dir, "release"), "");
        await slow.SignalAsync("CONT");
        var refusal = await slow.WaitForLineAsync(
            l => l.Contains("rejected a report for token", StringComparison.Ordinal) || l.Contains("No longer own", StringComparison.Ordinal),
            FunctionalCluster.Timeout, "the refusal of its late result");
        log.WriteLine("refusal: " + refusal);

        Assert.False(File.Exists(Path.Combine(dir, "done-1")), "attempt 1 ran on after its agent froze past half its lease");
        var after = await cluster.Client.GetRunAsync(run.Id);
        Assert.Equal(RunState.Succeeded, after.State);
        Assert.Equal(1, Succeeded(after.Steps[0]));
        Assert.Equal(2, after.Steps[0].Attempt);
        Assert.Equal("attempt 2", (await cluster.Client.GetStepOutputAsync(run.Id, "s")).Data.ToStringUtf8());
        Assert.Empty(await cluster.UsedSlotsAsync());
    }

    [Fact]
    public async Task SchedulerStoppedGracefully_AgentsReconnectToTheNextOne_RunningStepsKeepTheirAttempts()
    {
        // The lease outlasts any restart, even on a loaded machine: this test is about keeping attempts, not losing them.
        await using var cluster = await FunctionalCluster.StartAsync(redis, lease: TimeSpan.FromSeconds(120));
        var agent = await cluster.StartAgentAsync("agent-a", slots: 2);
        var dir = cluster.SharedDir;
        var hold = $"while [ ! -f '{dir}/release' ]; do sleep 0.05; done; printf '%s' $CP_STEP_ID > \"$CP_OUTPUT_FILE\"";
        var spec = Spec("graceful", Shell("x", hold), Shell("y", hold), Shell("z", "cat \"$CP_INPUTS_DIR/x\" \"$CP_INPUTS_DIR/y\" > \"$CP_OUTPUT_FILE\"", "x", "y"));
        spec.Steps[2].KeepOutput = true;
        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        await cluster.WaitForRunAsync(run.Id, r => StepOf(r, "x").State == StepState.Running && StepOf(r, "y").State == StepState.Running, "x and y running");

        await cluster.StopAndRestartSchedulerAsync();
        await WaitConnectedAsync(agent, 2);
        File.WriteAllText(Path.Combine(dir, "release"), "");

        var final = await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);
        Assert.Equal("xy", (await cluster.Client.GetStepOutputAsync(run.Id, "z")).Data.ToStringUtf8());
        Assert.All(final.Steps, s => Assert.Equal(1, s.Attempt));
        Assert.Empty(await cluster.UsedSlotsAsync());
    }
}
