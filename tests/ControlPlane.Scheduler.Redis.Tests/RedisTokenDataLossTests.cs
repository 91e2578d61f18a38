using ControlPlane.Tests.Support;
using StackExchange.Redis;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>
/// Fencing tokens are never handed out twice, even after Redis loses its data (FLUSHALL, a restart without persistence
/// or without the last fsync, an older AOF restored): a token handed out again would let a stale attempt's result pass
/// as the new attempt's. Each test owns a redis-server without persistence.
/// </summary>
public sealed class RedisTokenDataLossTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly RedisServer _redis = new();
    private ConnectionMultiplexer _connection = null!;
    private RedisRunStore _store = null!;

    public async Task InitializeAsync()
    {
        await _redis.StartAsync();
        _connection = await ConnectionMultiplexer.ConnectAsync(RedisRunStore.CreateConfiguration(_redis.Configuration));
        _store = new RedisRunStore(_connection, "tokens", new RunStoreOptions(), new ManualTimeProvider());
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        _connection.Dispose();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task Claim_AfterFlushAll_TokenIsGreaterThanEveryTokenHandedOutBefore()
    {
        var before = await ClaimAllAsync(3);

        await _redis.CliAsync("FLUSHALL");
        var after = await ClaimAllAsync(1);

        Assert.True(after.Min() > before.Max(), $"tokens before the loss: {string.Join(", ", before)}; after: {string.Join(", ", after)}");
    }

    [Fact]
    public async Task Claim_AfterRedisRestartedWithoutItsData_TokenIsGreaterThanEveryTokenHandedOutBefore()
    {
        var before = await ClaimAllAsync(3);

        await KillAndStartAsync();
        var after = await ClaimAllAsync(1);

        Assert.True(after.Min() > before.Max(), $"tokens before the loss: {string.Join(", ", before)}; after: {string.Join(", ", after)}");
    }

    /// <summary>Submits a run of <paramref name="steps"/> steps and claims them all for a freshly connected agent.</summary>
    private async Task<List<long>> ClaimAllAsync(int steps)
    {
        await _store.SubmitRunAsync(Run([.. Enumerable.Range(0, steps).Select(i => Shell("s" + i))]), null);
        var session = await _store.ConnectAgentAsync(new AgentRegistration("agent-1", "h", ["shell"], [], new Dictionary<string, string>(), steps, [], []));
        var claimed = await _store.ClaimAsync(new ClaimRequest("agent-1", steps) { SessionId = session.SessionId });
        Assert.Equal(steps, claimed.Count);
        return [.. claimed.Select(a => a.FencingToken)];
    }

    // kill -9 and start again: a server without persistence comes back empty.
    private async Task KillAndStartAsync()
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

        // Nothing survived; the store may already have written back its feed length, which it sets as it reconnects.
        var keys = (await _redis.CliAsync("KEYS", "*")).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.All(keys, key => Assert.EndsWith(":runfeed:max", key, StringComparison.Ordinal));
    }
}
