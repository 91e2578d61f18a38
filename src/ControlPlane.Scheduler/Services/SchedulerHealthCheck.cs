using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace ControlPlane.Scheduler.Services;

/// <summary>
/// The replica's health behind grpc.health.v1 (Grpc.AspNetCore.HealthChecks): unhealthy (NOT_SERVING) while it
/// drains or while the run store does not answer.
/// </summary>
internal sealed class SchedulerHealthCheck(SchedulerRuntime runtime) : IHealthCheck
{
    /// <summary>A probe that gets no answer in this time counts as an unreachable store.</summary>
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(5);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (runtime.ShuttingDown.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy("the scheduler is shutting down");
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ProbeTimeout);
        try
        {
            // A cheap read that touches the store: an unknown run id is one lookup.
            await runtime.Store.GetRunAsync("health-probe", timeout.Token).ConfigureAwait(false);
            return HealthCheckResult.Healthy();
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            SchedulerLog.StoreCallFailed(runtime.Logger, "Health", ex);
            return HealthCheckResult.Unhealthy("the run store does not answer", ex);
        }
    }
}
