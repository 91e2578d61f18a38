using ControlPlane.Scheduler.Tests;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Google.Protobuf;
using StackExchange.Redis;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>
/// The Redis store across a Redis crash and restart (scripts gone, connections dropped, state kept by AOF) and
/// while Redis is shut down. Each test owns its redis-server so it can stop, kill and start it.
/// </summary>
public sealed class RedisRunStoreRestartTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly RedisServer _redis = new(appendOnly: true);
    private ConnectionMultiplexer _connection = null!;
    private RedisRunStore _store = null!;

    public async Task InitializeAsync()
    {
        await _redis.StartAsync();
        _connection = await ConnectionMultiplexer.ConnectAsync(RedisRunStore.CreateConfiguration(_redis.Configuration));
        _store = new RedisRunStore(_connection, "restart", new RunStoreOptions(), new ManualTimeProvider());
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        _connection.Dispose();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task Report_AfterRedisRestart_ReloadsScriptsAndCompletesTheStep()
    {
        var run = (await _store.SubmitRunAsync(Run(Shell("a"), Shell("b", "a")), null)).Run;
        await _store.ConnectAgentAsync(new AgentRegistration("agent-1", "h", ["shell"], [], new Dictionary<string, string>(), 2, [], []));
        var a = Assert.Single(await _store.ClaimAsync(new ClaimRequest("agent-1", 2)));

        await RestartAsync();
        var outcome = await _store.ReportAsync(
        [
            new AttemptReport(new AttemptRef(a.RunId, a.StepId, a.FencingToken),
                new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = a.FencingToken, Output = ByteString.CopyFromUtf8("out") } }),
        ]);

        Assert.Equal(ReportOutcome.Accepted, Assert.Single(outcome));
        var b = Assert.Single(await _store.ClaimAsync(new ClaimRequest("agent-1", 2)));
        Assert.Equal("b", b.StepId);
        Assert.Equal("out", b.Inputs.Single().Data.ToStringUtf8());
        Assert.Equal(RunState.Running, (await _store.GetRunAsync(run.Id))!.State);
    }

    [Fact]
    public async Task Subscribe_AfterRedisRestart_SignalsArriveAgain()
    {
        var ready = new SignalRecorder();
        await using var subscription = await _store.SubscribeAsync(ready.Handle);

        await RestartAsync();

        // The subscription comes back shortly after the connection; submit until a wake-up arrives.
        var received = false;
        for (var i = 0; i < 100 && !received; i++)
        {
            var queue = $"q{i}";
            await _store.SubmitRunAsync(Run(Shell("a").With(s => s.Queue = queue)), null);
            try
            {
                await ready.WaitForAsync<ReadyWork>(s => s.Queue == queue, TimeSpan.FromMilliseconds(300));
                received = true;
            }
            catch (TimeoutException)
            {
            }
        }

        Assert.True(received, "no ReadyWork signal arrived after Redis restarted");
    }

    [Fact]
    public async Task StoreCalls_RedisDown_FailFastAsUnavailableThenRecoverOnTheirOwn()
    {
        var run = (await _store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        var failed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _connection.ConnectionFailed += (_, _) => failed.TrySetResult();

        await _redis.StopAsync();
        await failed.Task.WaitAsync(Wait);

        // While Redis is down, a read and a state change each fail on their own (no backlog holds them until Redis
        // returns), as UNAVAILABLE the caller may retry.
        var read = await Assert.ThrowsAsync<RunStoreException>(() => _store.GetRunAsync(run.Id));
        var write = await Assert.ThrowsAsync<RunStoreException>(() => _store.CancelRunAsync(run.Id, "during the outage"));
        Assert.Equal(RunStoreError.Unavailable, read.Error);
        Assert.Equal(RunStoreError.Unavailable, write.Error);
        Assert.Equal(ControlPlane.V1.ErrorReason.StoreUnavailable, write.Reason);

        // Redis comes back with nothing done by hand: the multiplexer reconnects, the scripts are there again, and the
        // refused cancel was not applied behind the caller's back.
        var restored = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _connection.ConnectionRestored += (_, e) =>
        {
            if (e.ConnectionType == ConnectionType.Interactive)
            {
                restored.TrySetResult();
            }
        };
        await _redis.StartAsync();
        await restored.Task.WaitAsync(Wait);
        var after = await _store.GetRunAsync(run.Id);
        Assert.NotNull(after);
        Assert.NotEqual(RunState.Cancelling, after.State);
        Assert.NotEqual(RunState.Cancelled, after.State);
        var cancelled = await _store.CancelRunAsync(run.Id, "after the outage");
        Assert.Equal(RunState.Cancelled, cancelled.State);
    }

    // kill -9 and start again: only what the AOF (fsync always) holds survives. Returns once the command connection
    // is back: the subscription connection reconnects on its own, and calls fail fast until commands can flow.
    private async Task RestartAsync()
    {
        var restored = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var failed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _connection.ConnectionFailed += (_, _) => failed.TrySetResult();
        _connection.ConnectionRestored += (_, e) =>
        {
            if (e.ConnectionType == ConnectionType.Interactive)
            {
                restored.TrySetResult();
            }
        };
        await _redis.KillAsync();
        await failed.Task.WaitAsync(Wait);
        await _redis.StartAsync();
        await restored.Task.WaitAsync(Wait);
    }
}
