using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Services;

/// <summary>
/// The reaper: every MaintenanceInterval it requeues attempts whose lease expired, fails timed-out attempts and
/// releases retries whose backoff elapsed. The store's ReadyWork signals then wake the agents that can take them.
/// Any number of replicas may run it: each pass is atomic in the store.
/// </summary>
internal sealed class MaintenanceLoop
{
    private readonly IRunStore store;
    private readonly SchedulerOptions options;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly CancellationTokenSource stop = new();
    private Task? loop;
    private long passes;

    public MaintenanceLoop(IRunStore store, SchedulerOptions options, TimeProvider time, ILogger logger)
    {
        this.store = store;
        this.options = options;
        this.time = time;
        this.logger = logger;
    }

    /// <summary>Passes completed so far.</summary>
    public long Passes => Interlocked.Read(ref passes);

    public void Start() => loop ??= Task.Run(() => RunAsync(stop.Token));

    public async Task StopAsync()
    {
        await stop.CancelAsync().ConfigureAwait(false);
        if (loop is not null)
        {
            try
            {
                await loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Stopped between passes or mid-call: the next replica or restart picks up.
            }
        }

        stop.Dispose();
    }

    private async Task RunAsync(CancellationToken token)
    {
        using var timer = new PeriodicTimer(options.MaintenanceInterval, time);
        while (await timer.WaitForNextTickAsync(token).ConfigureAwait(false))
        {
            try
            {
                MaintenanceResult result;
                do
                {
                    result = await store.RunMaintenanceAsync(options.MaintenanceBatch, token).ConfigureAwait(false);
                    if (result.LeasesExpired + result.RetriesReleased + result.TimedOut > 0)
                    {
                        SchedulerLog.MaintenanceDid(logger, result.LeasesExpired, result.RetriesReleased, result.TimedOut);
                    }
                }

                // A full batch of anything means more may be waiting: go again without waiting a tick.
                while (result.LeasesExpired >= options.MaintenanceBatch || result.RetriesReleased >= options.MaintenanceBatch || result.TimedOut >= options.MaintenanceBatch);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                SchedulerLog.MaintenanceFailed(logger, ex);
            }

            Interlocked.Increment(ref passes);
        }
    }
}
