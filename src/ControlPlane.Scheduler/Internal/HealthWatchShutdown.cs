using ControlPlane.Scheduler.Services;
using Microsoft.AspNetCore.Http;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// Ends grpc.health.v1 Watch streams when the replica shuts down. The standard health service keeps them open until
/// the client leaves, which would hold the listener's graceful stop for its whole timeout; watchers have already
/// been sent NOT_SERVING by then and reconnect elsewhere.
/// </summary>
internal sealed class HealthWatchShutdown(RequestDelegate next, SchedulerRuntime runtime)
{
    private const string WatchPath = "/grpc.health.v1.Health/Watch";

    /// <summary>Time for the NOT_SERVING update to reach the watcher before its stream is cut.</summary>
    private static readonly TimeSpan NotServingGrace = TimeSpan.FromMilliseconds(500);

    public async Task InvokeAsync(HttpContext context)
    {
        if (!context.Request.Path.Equals(WatchPath, StringComparison.Ordinal))
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        using var done = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        await using (runtime.ShuttingDown.Register(() => _ = AbortLaterAsync(context, done.Token)).ConfigureAwait(false))
        {
            await next(context).ConfigureAwait(false);
        }

        await done.CancelAsync().ConfigureAwait(false);
    }

    private static async Task AbortLaterAsync(HttpContext context, CancellationToken done)
    {
        try
        {
            await Task.Delay(NotServingGrace, done).ConfigureAwait(false);
            context.Abort();
        }
        catch (OperationCanceledException)
        {
            // The watch ended by itself.
        }
    }
}
