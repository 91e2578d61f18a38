using ControlPlane.Agent.Internal;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Agent.Tests;

/// <summary>A step never runs on past the lease that protects it: cut off from every scheduler, the agent stops it when the lease runs out.</summary>
public sealed class AttemptLeaseTests : IAsyncLifetime
{
    // The lease FakeConnection's Welcome grants.
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    // The agent stops a step this long before its lease ends: the 5 s kill grace and a second (below a quarter of the lease).
    private static readonly TimeSpan StopMargin = TimeSpan.FromSeconds(6);

    private readonly TempDirectory _dir = new();
    private readonly DotnetFramework _dotnet = new(abandonAfter: TimeSpan.FromSeconds(5));
    private readonly ManualTimeProvider _clock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Gate _gate = new();
    private FakeScheduler _scheduler = null!;

    public async Task InitializeAsync()
    {
        _scheduler = await FakeScheduler.StartAsync();
        _dotnet.Register("hold", _gate.HandleAsync);
    }

    public async Task DisposeAsync()
    {
        _gate.Release.TrySetResult("done");
        await _stop.CancelAsync();
        await _scheduler.DisposeAsync();
        _dir.Dispose();
    }

    private AgentOptions Options() => new()
    {
        SchedulerAddress = _scheduler.Address,
        AgentId = "agent-1",
        Slots = 1,
        WorkRoot = _dir.Path,
        MaxReconnectDelay = TimeSpan.FromMilliseconds(200),
    };

    /// <summary>An agent connected to the fake scheduler, running one step (token 7) that holds until released or stopped.</summary>
    private async Task<FakeConnection> StartHoldingAsync(bool acknowledgesHeartbeats, TimeSpan? heartbeat = null)
    {
        var worker = new AgentWorker(Options(), [_dotnet], timeProvider: _clock);
        _ = worker.RunAsync(_stop.Token);
        var connection = await _scheduler.NextConnectionAsync();
        connection.AcknowledgesHeartbeats = acknowledgesHeartbeats;
        await connection.HelloAsync();
        await connection.WelcomeAsync(heartbeat);
        await connection.AssignAsync(7, new StepSpec { Id = "s", Framework = "dotnet", Handler = "hold" });
        await _gate.Started.Task.WithTimeout();
        return connection;
    }

    [Fact]
    public async Task Worker_CutOffFromEverySchedulerPastTheLease_StopsTheStep()
    {
        var connection = await StartHoldingAsync(acknowledgesHeartbeats: false);

        // Every reconnect fails: no heartbeat can renew the lease any more.
        _scheduler.RejectNext(int.MaxValue / 2);
        connection.Abort();
        _clock.Advance(Lease - StopMargin - TimeSpan.FromSeconds(1));
        Assert.False(_gate.Cancelled.Task.IsCompleted, "stopped before its lease ran out");
        _clock.Advance(TimeSpan.FromSeconds(2));

        await _gate.Cancelled.Task.WithTimeout();
    }

    [Fact]
    public async Task Worker_HeartbeatsWritten_StepRunsOnPastTheFirstLease()
    {
        var connection = await StartHoldingAsync(acknowledgesHeartbeats: false, heartbeat: TimeSpan.FromSeconds(10));

        for (var beat = 1; beat <= 6; beat++)
        {
            _clock.Advance(TimeSpan.FromSeconds(10));
            await connection.WaitForCountAsync(m => m.Heartbeat is not null, beat);
        }

        Assert.False(_gate.Cancelled.Task.IsCompleted, "stopped although every heartbeat was written");
        _gate.Release.TrySetResult("out");
        Assert.Equal("out", (await connection.CompletedAsync(7)).Output.ToStringUtf8());
    }

    [Fact]
    public async Task Worker_HeartbeatsWrittenButNeverAccepted_StopsTheStepBeforeItsLeaseEnds()
    {
        // A scheduler that acknowledges heartbeats but stopped answering (a frozen replica): its stream stays open and
        // takes every heartbeat, yet no store renews the lease.
        // Heartbeats every 15 s: the lease runs out before two intervals pass without an acceptance.
        var connection = await StartHoldingAsync(acknowledgesHeartbeats: true, heartbeat: TimeSpan.FromSeconds(15));
        _clock.Advance(TimeSpan.FromSeconds(15));
        await connection.WaitForAsync(m => m.Heartbeat is not null);

        Assert.False(_gate.Cancelled.Task.IsCompleted, "stopped before its lease was about to run out");
        _clock.Advance(Lease - StopMargin - TimeSpan.FromSeconds(15) + TimeSpan.FromSeconds(1));

        await _gate.Cancelled.Task.WithTimeout();
        var failed = (await connection.WaitForAsync(m => m.StepFailed is not null)).StepFailed;
        Assert.Contains("lease", failed.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Worker_NoHeartbeatAcceptedForTwoIntervals_ReconnectsAndReannouncesTheAttempt()
    {
        var connection = await StartHoldingAsync(acknowledgesHeartbeats: true, heartbeat: TimeSpan.FromSeconds(5));

        // Heartbeat 1 is written at 5 s and never accepted; at 10 s nothing was accepted for two intervals since Welcome.
        _clock.Advance(TimeSpan.FromSeconds(5));
        await connection.WaitForCountAsync(m => m.Heartbeat is not null, 1);
        _clock.Advance(TimeSpan.FromSeconds(5));

        var next = await _scheduler.NextConnectionAsync();
        var hello = await next.HelloAsync();
        Assert.Equal([7L], hello.RunningAttempts.Select(a => a.FencingToken));
        Assert.False(_gate.Cancelled.Task.IsCompleted, "the step was stopped although its lease still ran");
    }

    [Fact]
    public async Task Worker_HeartbeatsAccepted_StepRunsOnPastTheFirstLease()
    {
        var connection = await StartHoldingAsync(acknowledgesHeartbeats: true, heartbeat: TimeSpan.FromSeconds(10));

        long last = 0;
        for (var beat = 1; beat <= 6; beat++)
        {
            _clock.Advance(TimeSpan.FromSeconds(10));
            var heartbeat = (await connection.WaitForCountAsync(m => m.Heartbeat is not null, beat)).Heartbeat;
            Assert.True(heartbeat.Sequence > last, $"heartbeat {beat} carries sequence {heartbeat.Sequence} after {last}");
            last = heartbeat.Sequence;
            await connection.AcceptHeartbeatAsync(heartbeat.Sequence);
            await AppliedAsync(connection, 100 + beat);
        }

        Assert.False(_gate.Cancelled.Task.IsCompleted, "stopped although every heartbeat was accepted");
        Assert.Equal(0, _scheduler.WaitingConnections);
        _gate.Release.TrySetResult("out");
        Assert.Equal("out", (await connection.CompletedAsync(7)).Output.ToStringUtf8());
    }

    [Fact]
    public async Task Runner_LeaseRunsOut_ReportsARetryableFailureNamingTheLease()
    {
        var options = Options();
        var frameworks = new Dictionary<string, IComputeFramework>(StringComparer.Ordinal) { ["dotnet"] = _dotnet };
        var outbox = new Outbox(options.MaxBufferedReports);
        var runner = new AttemptRunner(options, frameworks, new AttemptTable(options.AgentId, options.Slots), outbox, NullLogger.Instance, _clock);
        runner.RenewLeases(Lease, _clock.GetTimestamp());
        runner.Accept(new Assignment { RunId = "run-1", StepId = "s", Attempt = 1, FencingToken = 7, Spec = new StepSpec { Id = "s", Framework = "dotnet", Handler = "hold" } });
        await _gate.Started.Task.WithTimeout();

        _clock.Advance(Lease + TimeSpan.FromSeconds(1));

        var failed = await NextFailureAsync(outbox).WithTimeout();
        Assert.Equal(7, failed.FencingToken);
        Assert.Contains("lease", failed.Error, StringComparison.Ordinal);
        Assert.False(failed.Permanent);
        Assert.False(failed.Cancelled);
        Assert.False(failed.TimedOut);
    }

    [Fact]
    public async Task Runner_AssignmentReadAfterNoRenewalForTheLease_IsDeclinedNotStarted()
    {
        // An agent stopped (SIGSTOP) past the lease reads, once it runs again, an assignment that waited in its stream
        // all that time: the store may have given that attempt to another agent already.
        var options = Options();
        var frameworks = new Dictionary<string, IComputeFramework>(StringComparer.Ordinal) { ["dotnet"] = _dotnet };
        var outbox = new Outbox(options.MaxBufferedReports);
        var runner = new AttemptRunner(options, frameworks, new AttemptTable(options.AgentId, options.Slots), outbox, NullLogger.Instance, _clock);
        runner.RenewLeases(Lease, _clock.GetTimestamp());
        _clock.Advance(Lease - StopMargin + TimeSpan.FromSeconds(1));

        runner.Accept(new Assignment { RunId = "run-1", StepId = "s", Attempt = 1, FencingToken = 7, Spec = new StepSpec { Id = "s", Framework = "dotnet", Handler = "hold" } });

        var declined = (await NextAsync(outbox, m => m.StepDeclined is not null).WithTimeout()).StepDeclined;
        Assert.Equal(7, declined.FencingToken);
        Assert.Contains("no lease renewal confirmed for 25.0 s", declined.Reason, StringComparison.Ordinal);
        Assert.False(_gate.Started.Task.IsCompleted, "the step started although its assignment may have outlived its lease");

        // A renewal confirmed again: the next assignment starts.
        runner.RenewLeases(null, _clock.GetTimestamp());
        runner.Accept(new Assignment { RunId = "run-1", StepId = "s", Attempt = 1, FencingToken = 8, Spec = new StepSpec { Id = "s", Framework = "dotnet", Handler = "hold" } });
        await _gate.Started.Task.WithTimeout();
    }

    /// <summary>
    /// Returns once the agent has handled every message sent before this call: it handles them in order, and answers
    /// this one (an assignment for a framework it does not have) with a StepFailed.
    /// </summary>
    private static Task AppliedAsync(FakeConnection connection, long probeToken) =>
        connection.AssignAsync(probeToken, new StepSpec { Id = "probe", Framework = "none" })
            .ContinueWith(_ => connection.WaitForAsync(m => m.StepFailed?.FencingToken == probeToken), TaskScheduler.Default).Unwrap();

    private static async Task<StepFailed> NextFailureAsync(Outbox outbox) =>
        (await NextAsync(outbox, m => m.StepFailed is not null)).StepFailed;

    private static async Task<ConnectRequest> NextAsync(Outbox outbox, Func<ConnectRequest, bool> match)
    {
        while (true)
        {
            while (outbox.Peek() is { } next)
            {
                outbox.Commit(next.Covered);
                if (match(next.Message))
                {
                    return next.Message;
                }
            }

            await outbox.WaitAsync(CancellationToken.None);
        }
    }

    /// <summary>A handler that runs until released or stopped, telling the test when it started and whether it was stopped.</summary>
    private sealed class Gate
    {
        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<string> Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<StepHandlerResult> HandleAsync(IStepContext context)
        {
            context.CancellationToken.Register(() => Cancelled.TrySetResult());
            Started.TrySetResult();
            return StepHandlerResult.FromString(await Release.Task.WaitAsync(context.CancellationToken));
        }
    }
}
