using System.Diagnostics;
using ControlPlane.Scheduler.Redis.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace ControlPlane.Scheduler.Redis;

/// <summary>
/// The store's clock for every replica: Redis's <c>TIME</c>, read now and then, carried forward between reads by
/// the local monotonic timer. Lease and timeout arithmetic runs in the scripts against the time a replica passes in,
/// so replicas whose own clocks disagree (one 30 s fast would expire every lease the others hold) agree when each
/// passes this clock instead. A local wall-clock step changes nothing; a resync moves the clock only forward.
/// </summary>
public sealed class RedisTimeProvider : TimeProvider, IAsyncDisposable
{
    private readonly IDatabase _db;
    private readonly TimeProvider _local;
    private readonly TimeSpan _resyncInterval;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private Anchor? _anchor;
    private long _lastTicks;
    private Task? _loop;

    /// <param name="db">The store's database; <c>TIME</c> goes to the server it routes to.</param>
    /// <param name="local">The local timer that carries the time between reads (<see cref="TimeProvider.System"/>).</param>
    /// <param name="resyncInterval">How often to read <c>TIME</c> again.</param>
    public RedisTimeProvider(IDatabase db, TimeProvider local, TimeSpan resyncInterval, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(local);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(resyncInterval, TimeSpan.Zero);
        _db = db;
        _local = local;
        _resyncInterval = resyncInterval;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Reads Redis's clock once and keeps re-reading it every resync interval until disposed.</summary>
    public async Task StartAsync()
    {
        await SyncAsync().ConfigureAwait(false);
        _loop ??= Task.Run(ResyncLoopAsync);
    }

    /// <summary>Reads <c>TIME</c>; half the round trip is added, as the reply left Redis about then.</summary>
    public async Task SyncAsync()
    {
        var sent = _local.GetTimestamp();
        var reply = (RedisResult[])(await _db.ExecuteAsync("TIME").ConfigureAwait(false))!;
        var received = _local.GetTimestamp();
        var micros = ((long)reply[0] * 1_000_000) + (long)reply[1];
        var halfTrip = _local.GetElapsedTime(sent, received) / 2;
        var redisNow = DateTimeOffset.UnixEpoch.AddTicks(micros * 10) + halfTrip;
        Volatile.Write(ref _anchor, new Anchor(redisNow, received));
    }

    public override DateTimeOffset GetUtcNow()
    {
        var anchor = Volatile.Read(ref _anchor)
            ?? throw new InvalidOperationException("the Redis clock has not been read yet; call StartAsync first");
        var ticks = (anchor.Time + _local.GetElapsedTime(anchor.Timestamp)).UtcTicks;

        // Never backwards: a resync that lands a little earlier than the carried clock holds it still until it catches up.
        var last = Interlocked.Read(ref _lastTicks);
        while (ticks > last)
        {
            var seen = Interlocked.CompareExchange(ref _lastTicks, ticks, last);
            if (seen == last)
            {
                return new DateTimeOffset(ticks, TimeSpan.Zero);
            }

            last = seen;
        }

        return new DateTimeOffset(last, TimeSpan.Zero);
    }

    public override long GetTimestamp() => _local.GetTimestamp();

    public override long TimestampFrequency => _local.TimestampFrequency;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        _local.CreateTimer(callback, state, dueTime, period);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _stop.Dispose();
    }

    private async Task ResyncLoopAsync()
    {
        using var timer = new PeriodicTimer(_resyncInterval, _local);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                try
                {
                    await SyncAsync().ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is RedisException or RedisTimeoutException)
                {
                    // Redis is away: the local timer carries the last reading until it is back.
                    RedisStoreLog.ClockResyncFailed(_logger, ex.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private sealed record Anchor(DateTimeOffset Time, long Timestamp);
}
