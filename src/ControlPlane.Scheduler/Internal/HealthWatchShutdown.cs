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
        var watch = new WatchState(context, done.Token);
        await using (runtime.ShuttingDown.Register(() => _ = AbortLaterAsync(watch)).ConfigureAwait(false))
        {
            await next(context).ConfigureAwait(false);
        }

        // The context is pooled: once the watch is over it may serve another request, which an abort must never reach.
        watch.Finish();
        await done.CancelAsync().ConfigureAwait(false);
    }

    private static async Task AbortLaterAsync(WatchState watch)
    {
        try
        {
            await Task.Delay(NotServingGrace, watch.Done).ConfigureAwait(false);
            watch.Abort();
        }
        catch (OperationCanceledException)
        {
            // The watch ended by itself.
        }
    }

    private sealed class WatchState(HttpContext context, CancellationToken done)
    {
        private readonly Lock _gate = new();
        private bool _finished;

        public CancellationToken Done { get; } = done;

        public void Finish()
        {
            lock (_gate)
            {
                _finished = true;
            }
        }

        public void Abort()
        {
            lock (_gate)
            {
                if (!_finished)
                {
                    context.Abort();
                }
            }
        }
    }
}
