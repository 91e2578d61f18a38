using ControlPlane.Tests.Support;
using StackExchange.Redis;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>
/// Leases are computed on one clock, Redis's, whatever each replica's own clock says: a replica 30 s fast must not
/// expire the leases another replica just granted.
/// </summary>
public sealed class StoreClockTests : IAsyncLifetime
{
    private static readonly TimeSpan Fast = TimeSpan.FromSeconds(30);
    private readonly RedisServer _redis = new();
    private ConnectionMultiplexer _connection = null!;

    public async Task InitializeAsync()
    {
        await _redis.StartAsync();
        _connection = await ConnectionMultiplexer.ConnectAsync(RedisRunStore.CreateConfiguration(_redis.Configuration));
    }

    public async Task DisposeAsync()
    {
        _connection.Dispose();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task Maintenance_OnAReplicaWhoseClockIs30sFast_ExpiresNoLeaseOnRedisClock()
    {
        var options = new RunStoreOptions { LeaseDuration = TimeSpan.FromSeconds(20) };
        await using var clockA = new RedisTimeProvider(_connection.GetDatabase(), TimeProvider.System, TimeSpan.FromSeconds(10));
        await using var clockB = new RedisTimeProvider(_connection.GetDatabase(), new SkewedTimeProvider(Fast), TimeSpan.FromSeconds(10));
        await clockA.StartAsync();
        await clockB.StartAsync();
        await using var replicaA = new RedisRunStore(_connection, "clock", options, clockA);
        await using var replicaB = new RedisRunStore(_connection, "clock", options, clockB);

        await replicaA.SubmitRunAsync(Run(Shell("a")), null);
        await replicaA.ConnectAgentAsync(new AgentRegistration("agent-1", "h", ["shell"], [], new Dictionary<string, string>(), 1, [], []));
        Assert.Single(await replicaA.ClaimAsync(new ClaimRequest("agent-1", 1)));

        var result = await replicaB.RunMaintenanceAsync(100);

        Assert.Equal(0, result.LeasesExpired);
        Assert.True(Math.Abs((clockB.GetUtcNow() - clockA.GetUtcNow()).TotalSeconds) < 5, "both replicas read the same clock");

        // The same replica on its own clock is the defect this guards against: it expires the fresh lease.
        await using var ownClock = new RedisRunStore(_connection, "clock", options, new SkewedTimeProvider(Fast));
        Assert.Equal(1, (await ownClock.RunMaintenanceAsync(100)).LeasesExpired);
    }

    [Fact]
    public async Task GetUtcNow_AfterAResyncThatLandsEarlier_NeverGoesBackwards()
    {
        var local = new SteppedTimer();
        await using var clock = new RedisTimeProvider(_connection.GetDatabase(), local, TimeSpan.FromHours(1));
        await clock.SyncAsync();

        // The local timer runs 10 s ahead of Redis (as a drifting timer would), then a resync pulls the reading back.
        local.Ticks += 10 * TimeSpan.TicksPerSecond;
        var carried = clock.GetUtcNow();
        await clock.SyncAsync();

        Assert.True(clock.GetUtcNow() >= carried);
    }

    [Fact]
    public async Task ConnectAsync_WithoutATimeProvider_RunsOnRedisClock()
    {
        await using var store = await RedisRunStore.ConnectAsync(_redis.Configuration, "own", new RunStoreOptions());

        Assert.IsType<RedisTimeProvider>(store.Clock);
    }

    /// <summary>The system clock, <c>offset</c> ahead; its timer (what carries time between readings) is the system's.</summary>
    private sealed class SkewedTimeProvider(TimeSpan offset) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + offset;
    }

    /// <summary>A monotonic timer that moves only when told.</summary>
    private sealed class SteppedTimer : TimeProvider
    {
        public long Ticks { get; set; } = TimeSpan.TicksPerDay;

        public override long GetTimestamp() => Ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
    }
}
