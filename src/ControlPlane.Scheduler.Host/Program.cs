using ControlPlane.Hosting;
using ControlPlane.Scheduler.Hosting;
using ControlPlane.Scheduler.Redis;

// cp-scheduler: settings from flags, CP_* environment variables and a --config JSON file (cp-scheduler --help).
// The signal handlers come first and stay for the life of the process, so a late SIGTERM cannot kill it mid-shutdown.
var stop = DaemonSignals.Install();

// With Redis configured the store is the Redis one, on Redis's clock; otherwise SchedulerServer uses the embedded store.
return await SchedulerHost.RunAsync(
    args,
    static async (options, cancellationToken) =>
        await RedisRunStore.ConnectAsync(options.Redis!, options.Namespace, options.CreateStoreOptions()).ConfigureAwait(false),
    DaemonContext.FromProcess("cp-scheduler"),
    stop).ConfigureAwait(false);
