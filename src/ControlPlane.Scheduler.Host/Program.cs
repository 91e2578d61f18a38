using ControlPlane.Hosting;
using ControlPlane.Scheduler.Hosting;
using ControlPlane.Scheduler.Redis;

// cp-scheduler: settings from flags, CP_* environment variables and a --config JSON file (cp-scheduler --help).
// The signal handlers come first and stay for the life of the process, so a late SIGTERM cannot kill it mid-shutdown.
var stop = DaemonSignals.Install();

// With Redis configured the stores are the Redis ones, on Redis's clock; otherwise SchedulerServer uses embedded stores.
return await SchedulerHost.RunAsync(
    args,
    static async (options, cancellationToken) =>
        await RedisNamespaceStores.ConnectAsync(options.Redis!, options.CreateStoreOptions()).ConfigureAwait(false),
    DaemonContext.FromProcess("cp-scheduler"),
    stop).ConfigureAwait(false);
