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

    /// <summary>What health says about security: authentication off, or an --insecure listener.</summary>
    internal static string SecurityDescription(SchedulerOptions options)
    {
        var insecure = options.Insecure && !options.ListensOnLoopback && (options.TlsCert is null || !options.AuthenticationEnabled);
        return (options.AuthenticationEnabled, insecure) switch
        {
            (false, true) => $"INSECURE: authentication off and listening on {options.Listen} (--insecure)",
            (true, true) => $"INSECURE: no TLS on {options.Listen} (--insecure); bearer tokens travel in clear text",
            (false, false) => "authentication off: every caller may do everything (loopback only)",
            (true, false) => "authentication on",
        };
    }

    private static Dictionary<string, object> SecurityData(SchedulerOptions options) => new(StringComparer.Ordinal)
    {
        ["authentication"] = options.AuthenticationEnabled ? "on" : "off",
        ["insecure"] = options.Insecure && !options.ListensOnLoopback,
    };

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
            await runtime.Namespaces.Default.Store.GetRunAsync("health-probe", timeout.Token).ConfigureAwait(false);
            return HealthCheckResult.Healthy(SecurityDescription(runtime.Options), SecurityData(runtime.Options));
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            SchedulerLog.StoreCallFailed(runtime.Logger, "Health", ex);
            return HealthCheckResult.Unhealthy("the run store does not answer", ex);
        }
    }
}
