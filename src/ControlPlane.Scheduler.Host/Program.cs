using ControlPlane.Scheduler;
using ControlPlane.Scheduler.Hosting;
using ControlPlane.Scheduler.Redis;

// With Redis configured the store is the Redis one; otherwise SchedulerServer uses the embedded store.
return await SchedulerHost.RunAsync(
    args,
    static async (options, cancellationToken) =>
        await RedisRunStore.ConnectAsync(options.Redis!, options.Namespace, options.CreateStoreOptions(), TimeProvider.System).ConfigureAwait(false),
    Console.Out,
    Console.Error).ConfigureAwait(false);
