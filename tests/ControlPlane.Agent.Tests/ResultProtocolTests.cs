using ControlPlane.V1;

namespace ControlPlane.Agent.Tests;

/// <summary>Results kept until the scheduler acknowledges them, and assignments declined instead of failed.</summary>
public sealed class ResultProtocolTests : IAsyncLifetime
{
    private readonly TempDirectory _dir = new();
    private readonly DotnetFramework _dotnet = new(abandonAfter: TimeSpan.FromSeconds(5));
    private readonly CancellationTokenSource _stop = new();
    private FakeScheduler _scheduler = null!;

    public async Task InitializeAsync() => _scheduler = await FakeScheduler.StartAsync();

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _scheduler.DisposeAsync();
        _dir.Dispose();
    }

    private (AgentWorker Worker, Task Running) Start(int slots = 2)
    {
        var options = new AgentOptions
        {
            SchedulerAddress = _scheduler.Address,
            AgentId = "agent-1",
            Slots = slots,
            WorkRoot = _dir.Path,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            MaxReconnectDelay = TimeSpan.FromMilliseconds(200),
            KillGracePeriod = TimeSpan.FromSeconds(1),
        };
        var worker = new AgentWorker(options, [new ShellFramework(TimeSpan.FromSeconds(1)), _dotnet]);
        return (worker, worker.RunAsync(_stop.Token));
    }

    private async Task<(FakeConnection Connection, Hello Hello)> ConnectAsync()
    {
        var connection = await _scheduler.NextConnectionAsync();
        connection.AcknowledgesResults = true;
        connection.AcceptsDeclines = true;
        var hello = await connection.HelloAsync();
        await connection.WelcomeAsync();
        return (connection, hello);
    }

    private static StepSpec Dotnet(string id, string handler) => new() { Id = id, Framework = "dotnet", Handler = handler };

    [Fact]
    public async Task Reconnect_ResultWrittenButNeverAcknowledged_ReannouncedAndSentAgainUntilAcknowledged()
    {
        _dotnet.Register("quick", _ => Task.FromResult(StepHandlerResult.FromString("done once")));
        var (worker, running) = Start();
        var (first, _) = await ConnectAsync();
        await first.AssignAsync(31, Dotnet("a", "quick"));
        await first.CompletedAsync(31);

        // The scheduler died between receiving the result and storing it: no acknowledgement ever came.
        first.Abort();
        var (second, hello) = await ConnectAsync();
        var again = await second.CompletedAsync(31);
        await second.AcknowledgeAsync(31);
        worker.Drain("test over");
        await running.WithTimeout();

        var announced = Assert.Single(hello.RunningAttempts);
        Assert.Equal(31, announced.FencingToken);
        Assert.Equal("done once", again.Output.ToStringUtf8());
        Assert.Single(second.Received, m => m.StepCompleted?.FencingToken == 31);
    }

    [Fact]
    public async Task Drain_ResultNotYetAcknowledged_AgentWaitsForTheAcknowledgementBeforeItEnds()
    {
        _dotnet.Register("quick", _ => Task.FromResult(StepHandlerResult.FromString("ok")));
        var (worker, running) = Start();
        var (connection, _) = await ConnectAsync();
        await connection.AssignAsync(32, Dotnet("a", "quick"));
        await connection.CompletedAsync(32);

        worker.Drain("test over");
        await connection.WaitForAsync(m => m.SlotsChanged is { Slots: 0 });

        // Still connected after the drain: an assignment arriving now is answered.
        await connection.AssignAsync(38, Dotnet("late", "quick"));
        await connection.WaitForAsync(m => m.StepDeclined?.FencingToken == 38);
        Assert.False(running.IsCompleted);
        Assert.False(connection.Ended.IsCompleted);
        await connection.AcknowledgeAsync(32, 38);
        await running.WithTimeout();
        await connection.Ended.WithTimeout();
    }

    [Fact]
    public async Task ResultRejected_UnacknowledgedResult_ForgottenAndNotSentAgain()
    {
        _dotnet.Register("quick", _ => Task.FromResult(StepHandlerResult.FromString("ok")));
        var (worker, running) = Start();
        var (first, _) = await ConnectAsync();
        await first.AssignAsync(33, Dotnet("a", "quick"));
        await first.CompletedAsync(33);

        await first.SendAsync(new ConnectResponse { ResultRejected = new ResultRejected { FencingToken = 33, Reason = "stale" } });
        first.Abort();
        var (second, hello) = await ConnectAsync();
        worker.Drain("test over");
        await running.WithTimeout();

        Assert.Empty(hello.RunningAttempts);
        Assert.DoesNotContain(second.Received, m => m.StepCompleted?.FencingToken == 33);
    }

    [Fact]
    public async Task Assignment_WhileDraining_DeclinedNotFailed()
    {
        var gate = new TaskCompletionSource<StepHandlerResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        _dotnet.Register("wait", _ => gate.Task);
        var (worker, running) = Start();
        var (connection, _) = await ConnectAsync();
        await connection.AssignAsync(34, Dotnet("a", "wait"));
        await connection.WaitForAsync(m => m.StepStarted?.FencingToken == 34);

        worker.Drain("systemctl restart");
        await connection.WaitForAsync(m => m.SlotsChanged is { Slots: 0 });
        await connection.AssignAsync(35, Dotnet("late", "wait"));
        var declined = (await connection.WaitForAsync(m => m.StepDeclined?.FencingToken == 35)).StepDeclined;
        gate.SetResult(StepHandlerResult.FromString("ok"));
        await connection.CompletedAsync(34);
        await connection.AcknowledgeAsync(34, 35);
        await running.WithTimeout();

        Assert.Contains("draining", declined.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(connection.Received, m => m.StepFailed?.FencingToken == 35 || m.StepStarted?.FencingToken == 35);
    }

    [Fact]
    public async Task Reconnect_DeclineWrittenButNeverAcknowledged_ReannouncedAndSentAgainUntilAcknowledged()
    {
        var gate = new TaskCompletionSource<StepHandlerResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        _dotnet.Register("wait", _ => gate.Task);
        var (worker, running) = Start(slots: 1);
        var (first, _) = await ConnectAsync();
        await first.AssignAsync(39, Dotnet("a", "wait"));
        await first.WaitForAsync(m => m.StepStarted?.FencingToken == 39);
        await first.SendAsync(new ConnectResponse { Assignment = new Assignment { RunId = "run-2", StepId = "b", Attempt = 3, FencingToken = 40, Spec = Dotnet("b", "wait") } });
        await first.WaitForAsync(m => m.StepDeclined?.FencingToken == 40);

        // The stream died before the scheduler stored the decline: the step would wait out its lease and lose an attempt.
        first.Abort();
        var (second, hello) = await ConnectAsync();
        var again = (await second.WaitForAsync(m => m.StepDeclined?.FencingToken == 40)).StepDeclined;
        await second.AcknowledgeAsync(40);
        gate.SetResult(StepHandlerResult.FromString("ok"));
        await second.CompletedAsync(39);
        await second.AcknowledgeAsync(39);
        worker.Drain("test over");
        await running.WithTimeout();

        var declined = Assert.Single(hello.RunningAttempts, a => a.FencingToken == 40);
        Assert.Equal(("run-2", "b", 3), (declined.RunId, declined.StepId, declined.Attempt));
        Assert.Contains("free slots", again.Reason, StringComparison.Ordinal);
        Assert.Single(second.Received, m => m.StepDeclined?.FencingToken == 40);
    }

    [Fact]
    public async Task Assignment_BeyondFreeSlots_Declined()
    {
        var gate = new TaskCompletionSource<StepHandlerResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        _dotnet.Register("wait", _ => gate.Task);
        Start(slots: 1);
        var (connection, _) = await ConnectAsync();
        await connection.AssignAsync(36, Dotnet("a", "wait"));
        await connection.WaitForAsync(m => m.StepStarted?.FencingToken == 36);

        await connection.AssignAsync(37, Dotnet("b", "wait"));
        var declined = (await connection.WaitForAsync(m => m.StepDeclined?.FencingToken == 37)).StepDeclined;
        gate.SetResult(StepHandlerResult.FromString("ok"));

        Assert.Contains("free slots", declined.Reason, StringComparison.Ordinal);
    }
}
