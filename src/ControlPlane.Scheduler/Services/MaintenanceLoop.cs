using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Services;

/// <summary>
/// The reaper: every MaintenanceInterval it requeues attempts whose lease expired, fails timed-out attempts and
/// releases retries whose backoff elapsed. The store's ReadyWork signals then wake the agents that can take them.
/// Any number of replicas may run it: each pass is atomic in the store.
/// </summary>
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

    public MaintenanceLoop(IRunStore store, SchedulerOptions options, TimeProvider time, ILogger logger)
    {
        _store = store;
        _options = options;
        _time = time;
        _logger = logger;
    }

    /// <summary>Passes completed so far.</summary>
    public long Passes => Interlocked.Read(ref _passes);

    public void Start() => _loop ??= Task.Run(() => RunAsync(_stop.Token));

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

    private async Task RunAsync(CancellationToken token)
    {
        using var timer = new PeriodicTimer(_options.MaintenanceInterval, _time);
        while (await timer.WaitForNextTickAsync(token).ConfigureAwait(false))
        {
            try
            {
                MaintenanceResult result;
                do
                {
                    result = await _store.RunMaintenanceAsync(_options.MaintenanceBatch, token).ConfigureAwait(false);
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
                SchedulerLog.MaintenanceFailed(_logger, ex);
            }

            Interlocked.Increment(ref _passes);
        }
    }
}
