using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Services;

/// <summary>
/// The reaper: every MaintenanceInterval it requeues attempts whose lease expired, fails timed-out attempts and
/// releases retries whose backoff elapsed. The store's ReadyWork signals then wake the agents that can take them.
/// Any number of replicas may run it: each pass is atomic in the store.
/// </summary>
/// <remarks>
/// While the store can not be reached no agent can renew a lease, so a pass right after an outage would expire healthy
/// attempts. A replica whose store calls failed as unreachable therefore first freezes the leases over the time since its
/// last successful pass (<see cref="IRunStore.FreezeLeasesAsync"/>), and skips the pass while that fails. A replica
/// that was merely paused saw no failure and freezes nothing.
/// </remarks>
#pragma warning disable CA1001 // StopAsync disposes the token source once the loop has ended; nothing else holds it.
internal sealed class MaintenanceLoop
#pragma warning restore CA1001
{
    private readonly IRunStore _store;
    private readonly SchedulerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;
    private long _passes;

    // Store time before the last call the store answered, and whether a call has failed as unreachable since.
    private DateTimeOffset _lastReached;
    private bool _unreachable;

    public MaintenanceLoop(IRunStore store, SchedulerOptions options, TimeProvider time, ILogger logger)
    {
        _store = store;
        _options = options;
        _time = time;
        _logger = logger;
    }

    /// <summary>Passes completed so far.</summary>
    public long Passes => Interlocked.Read(ref _passes);

    public void Start()
    {
        if (_loop is null)
        {
            _lastReached = _store.Clock.GetUtcNow();

            // Created here, not in the loop's task, so the first pass is due one interval after Start returns.
            var timer = new PeriodicTimer(_options.MaintenanceInterval, _time);
            _loop = Task.Run(() => RunAsync(timer, _stop.Token));
        }
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            try
            {
                await _loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Stopped between passes or mid-call: the next replica or restart picks up.
            }
        }

        _stop.Dispose();
    }

    private async Task RunAsync(PeriodicTimer timer, CancellationToken token)
    {
        using var owned = timer;
        while (await timer.WaitForNextTickAsync(token).ConfigureAwait(false))
        {
            if (_unreachable && !await TryFreezeLeasesAsync(token).ConfigureAwait(false))
            {
                Interlocked.Increment(ref _passes);
                continue;
            }

            try
            {
                MaintenanceResult result;
                do
                {
                    var started = _store.Clock.GetUtcNow();
                    result = await _store.RunMaintenanceAsync(_options.MaintenanceBatch, token).ConfigureAwait(false);
                    _lastReached = started;
                    _unreachable = false;
                    if (result.LeasesExpired + result.RetriesReleased + result.TimedOut + result.RunsDeleted + result.AgentsPruned > 0)
                    {
                        SchedulerLog.MaintenanceDid(_logger, result.LeasesExpired, result.RetriesReleased, result.TimedOut, result.RunsDeleted, result.AgentsPruned);
                    }
                }

                // A full batch of anything means more may be waiting: go again without waiting a tick.
                while (result.LeasesExpired >= _options.MaintenanceBatch || result.RetriesReleased >= _options.MaintenanceBatch || result.TimedOut >= _options.MaintenanceBatch
                    || result.RunsDeleted >= _options.MaintenanceBatch || result.AgentsPruned >= _options.MaintenanceBatch);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                _unreachable |= IsUnreachable(ex);
                SchedulerLog.MaintenanceFailed(_logger, ex);
            }

            Interlocked.Increment(ref _passes);
        }
    }

    /// <summary>Freezes the leases over the time the store could not be reached; false when the store refused or failed.</summary>
    private async Task<bool> TryFreezeLeasesAsync(CancellationToken token)
    {
        var since = _lastReached;
        var until = _store.Clock.GetUtcNow();

        // An outage shorter than the lease less two heartbeats cost no lease: the renewals that resume within a
        // heartbeat after it land before any deadline. Freezing it would only delay reaping agents that did die.
        if (until - since < _options.LeaseDuration - 2 * _options.HeartbeatInterval)
        {
            return true;
        }

        try
        {
            var frozen = await _store.FreezeLeasesAsync(since, until, token).ConfigureAwait(false);
            _lastReached = until;
            _unreachable = false;
            SchedulerLog.LeasesFrozen(_logger, since, until, frozen.Shift, frozen.LeasesMoved);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            SchedulerLog.LeaseFreezeFailed(_logger, ex);

            // Still unreachable: a pass now would fail too, or expire what the freeze is for. Any other refusal (a
            // full store) must not stop the passes, whose deletions are what frees the store.
            return !IsUnreachable(ex);
        }
    }

    private static bool IsUnreachable(Exception ex) => ex is RunStoreException { Error: RunStoreError.Unavailable, StoreFull: false } or TimeoutException;
}
