using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Xunit;
using static ControlPlane.FunctionalTests.FunctionalCluster;
using static ControlPlane.FunctionalTests.FunctionalSpecs;

namespace ControlPlane.FunctionalTests;

[Collection(FunctionalTestGroup.Name)]
public sealed class ControlTests(RedisServerFixture redis)
{
    [Fact]
    public async Task RunCap_SixIndependentSteps_NeverMoreThanTwoAtOnce()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis);
        await cluster.StartAgentAsync("agent-a", slots: 3);
        await cluster.StartAgentAsync("agent-b", slots: 3);
        var log = cluster.Path2("run-cap.log");
        var spec = Spec("capped", Enumerable.Range(1, 6).Select(i => Shell($"s{i}", Logged(log))).ToArray());
        spec.Concurrency = 2;

        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);

        Assert.Equal(2, MaxOverlap(log));
        Assert.Empty(await cluster.UsedSlotsAsync());
    }

    [Fact]
    public async Task ConcurrencyKeyCap_StepsOfTwoRuns_NeverMoreThanTheCapAcrossRuns()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis);
        await cluster.StartAgentAsync("agent-a", slots: 3);
        await cluster.StartAgentAsync("agent-b", slots: 3);
        await cluster.Client.SetLimitAsync(LimitKind.ConcurrencyKey, "gpu", 1);
        var log = cluster.Path2("gpu.log");
        RunSpec GpuRun(string name)
        {
            var spec = Spec(name, Enumerable.Range(1, 3).Select(i => Shell($"g{i}", Logged(log))).ToArray());
            foreach (var step in spec.Steps)
            {
                step.ConcurrencyKey = "gpu";
            }

            return spec;
        }

        var first = (await cluster.Client.SubmitRunAsync(GpuRun("gpu-one"))).Run;
        var second = (await cluster.Client.SubmitRunAsync(GpuRun("gpu-two"))).Run;
        await cluster.WaitForStateAsync(first.Id, RunState.Succeeded);
        await cluster.WaitForStateAsync(second.Id, RunState.Succeeded);

        Assert.Equal(1, MaxOverlap(log));
        Assert.Equal(12, File.ReadLines(log).Count());
        Assert.Empty(await cluster.UsedSlotsAsync());
    }

    [Fact]
    public async Task Budget_EstimateLargerThanTheBudget_StepFailsBeforeDispatchWithQuotaReason()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis);
        await cluster.StartAgentAsync("agent-a", slots: 1);
        var marker = cluster.Path2("ran");
        var spec = Spec("budget", Shell("big", $"touch '{marker}'"));
        spec.Budget["cpu_seconds"] = 10;
        spec.Steps[0].Estimate["cpu_seconds"] = 50;

        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        var final = await cluster.WaitForStateAsync(run.Id, RunState.Failed);

        var step = final.Steps[0];
        Assert.Equal(StepState.Failed, step.State);
        Assert.Contains("QUOTA_EXCEEDED", step.Error, StringComparison.Ordinal);
        Assert.Contains("cpu_seconds", step.Error, StringComparison.Ordinal);
        Assert.Equal(0, step.Attempt);
        Assert.False(File.Exists(marker));
        Assert.Empty(await cluster.UsedSlotsAsync());
    }

    [Fact]
    public async Task Gates_OneApprovedOneRejected_DownstreamRunsOrIsSkipped()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis);
        await cluster.StartAgentAsync("agent-a", slots: 2);
        RunSpec Gated(string name) => Spec(name,
            Shell("build", "printf built > \"$CP_OUTPUT_FILE\""),
            Gate("approve", "build"),
            Shell("publish", "printf published > \"$CP_OUTPUT_FILE\"", "approve"));

        var approved = (await cluster.Client.SubmitRunAsync(Gated("ship-it"))).Run;
        var rejected = (await cluster.Client.SubmitRunAsync(Gated("hold-it"))).Run;
        await cluster.WaitForRunAsync(approved.Id, r => StepOf(r, "approve").State == StepState.WaitingApproval, "gate waiting");
        await cluster.WaitForRunAsync(rejected.Id, r => StepOf(r, "approve").State == StepState.WaitingApproval, "gate waiting");
        await cluster.Client.ApproveGateAsync(approved.Id, "approve", approve: true, decidedBy: "alice");
        await cluster.Client.ApproveGateAsync(rejected.Id, "approve", approve: false, decidedBy: "bob", comment: "freeze week");

        var a = await cluster.WaitForStateAsync(approved.Id, RunState.Succeeded);
        var b = await cluster.WaitForStateAsync(rejected.Id, RunState.Failed);
        Assert.Equal(StepState.Succeeded, StepOf(a, "publish").State);
        Assert.Equal(StepState.Skipped, StepOf(b, "publish").State);
        Assert.Contains("freeze week", StepOf(b, "approve").Error, StringComparison.Ordinal);
        Assert.Empty(await cluster.UsedSlotsAsync());
    }

    [Fact]
    public async Task CancelRun_RunningShellStep_ProcessTreeKilledAndStepCancelled()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis);
        await cluster.StartAgentAsync("agent-a", slots: 1);
        var pids = cluster.Path2("pids");
        var spec = Spec("cancel-me",
            Shell("long", $"sleep 300 & echo \"$$ $!\" > '{pids}.tmp'; mv '{pids}.tmp' '{pids}'; wait"),
            Shell("after", "true", "long"));

        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        await WaitForFileAsync(pids, "the step's process ids");
        var tree = File.ReadAllText(pids).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        Assert.All(tree, pid => Assert.True(Alive(pid), $"process {pid} should be running"));
        await cluster.Client.CancelRunAsync(run.Id, "operator");

        var final = await cluster.WaitForStateAsync(run.Id, RunState.Cancelled);
        Assert.Equal(StepState.Cancelled, StepOf(final, "long").State);
        Assert.Equal(StepState.Cancelled, StepOf(final, "after").State);
        foreach (var pid in tree)
        {
            await WaitUntilGoneAsync(pid);
        }

        Assert.Empty(await cluster.UsedSlotsAsync());
    }

    [Fact]
    public async Task Timeout_FirstAttemptHangs_KilledAsTimedOutAndTheRetrySucceeds()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis);
        await cluster.StartAgentAsync("agent-a", slots: 1);
        var step = Shell("flaky", "if [ \"$CP_ATTEMPT\" = 1 ]; then sleep 300; fi; printf 'attempt %s' $CP_ATTEMPT > \"$CP_OUTPUT_FILE\"")
            .WithTimeout(TimeSpan.FromSeconds(1))
            .WithRetry(maxAttempts: 2, backoff: TimeSpan.FromMilliseconds(200));
        var spec = Spec("timeout", step);
        spec.Steps[0].KeepOutput = true;

        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        var final = await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);

        var s = final.Steps[0];
        Assert.Equal(2, s.Attempt);
        Assert.Contains(s.History, h => h.Attempt == 1 && h.Reason.Contains("timed out", StringComparison.Ordinal));
        Assert.Equal("attempt 2", (await cluster.Client.GetStepOutputAsync(run.Id, "flaky")).Data.ToStringUtf8());
        Assert.Empty(await cluster.UsedSlotsAsync());
    }

    [Fact]
    public async Task PauseRun_WhileAStepRuns_NothingNewIsDispatchedUntilResume()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis);
        await cluster.StartAgentAsync("agent-a", slots: 2);
        var dir = cluster.SharedDir;
        var spec = Spec("pausable",
            Shell("first", $"while [ ! -f '{dir}/go' ]; do sleep 0.05; done"),
            Shell("second", "true", "first"));

        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        await cluster.WaitForRunAsync(run.Id, r => StepOf(r, "first").State == StepState.Running, "first running");
        var paused = await cluster.Client.PauseRunAsync(run.Id);
        Assert.Equal(RunState.Paused, paused.State);
        File.WriteAllText(Path.Combine(dir, "go"), "");

        // The running step finishes; the one it unblocks stays READY while the run is paused.
        var whilePaused = await cluster.WaitForRunAsync(run.Id, r => StepOf(r, "first").State == StepState.Succeeded, "first succeeded");
        Assert.Equal(RunState.Paused, whilePaused.State);
        Assert.Equal(StepState.Ready, StepOf(whilePaused, "second").State);
        var stats = await cluster.Client.GetStatsAsync();
        Assert.Equal(0, stats.Slots.Where(s => s.Kind == "agent").Sum(s => s.Used));

        await cluster.Client.ResumeRunAsync(run.Id);
        var final = await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);
        Assert.Equal(1, Succeeded(StepOf(final, "second")));
        Assert.Empty(await cluster.UsedSlotsAsync());
    }

    [Fact]
    public async Task BadInputOverTheWire_RightStatusAndAMessageSayingWhatToFix()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis);

        var cyclic = await Assert.ThrowsAsync<RpcException>(() =>
            cluster.Client.SubmitRunAsync(Spec("loop", Shell("x", "true", "y"), Shell("y", "true", "x"))));
        var unknown = await Assert.ThrowsAsync<RpcException>(() => cluster.Client.GetRunAsync("does-not-exist"));
        // The client library checks ids itself, so the malformed request goes out on a raw generated client.
        using var channel = GrpcChannel.ForAddress(cluster.Address);
        var malformed = await Assert.ThrowsAsync<RpcException>(async () =>
            await new RunService.RunServiceClient(channel).CancelRunAsync(new CancelRunRequest { Reason = "no id" }, deadline: DateTime.UtcNow + FunctionalCluster.Timeout));

        Assert.Equal(StatusCode.InvalidArgument, cyclic.StatusCode);
        Assert.Contains("cycle: x -> y", cyclic.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("remove one of these needs", cyclic.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("does-not-exist", unknown.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.InvalidArgument, malformed.StatusCode);
        Assert.Equal("run_id is required", malformed.Status.Detail);

        // And the standard health probe answers SERVING while Redis answers.
        var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow + FunctionalCluster.Timeout);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
    }

    private static bool Alive(int pid) =>
        File.Exists($"/proc/{pid}/stat") && !File.ReadAllText($"/proc/{pid}/stat").Split(' ')[2].Equals("Z", StringComparison.Ordinal);

    /// <summary>
    /// Waits for a process that is not our child to be gone. Linux offers no exit event for a non-child without
    /// pidfd plumbing, so this re-checks /proc every 50 ms, bounded by the test timeout.
    /// </summary>
    private static async Task WaitUntilGoneAsync(int pid)
    {
        using var cts = new CancellationTokenSource(FunctionalCluster.Timeout);
        while (Alive(pid))
        {
            try
            {
                await Task.Delay(50, cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new Xunit.Sdk.XunitException($"process {pid} of the cancelled step is still alive after {FunctionalCluster.Timeout}");
            }
        }
    }
}
