using ControlPlane.Scheduler.Security;
using ControlPlane.Scheduler.Services;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// The replica's metrics: an OpenTelemetry MeterProvider over the scheduler's meter, ASP.NET Core (HTTP and gRPC
/// server calls, Kestrel) and the .NET runtime, exported in the Prometheus text format at <see cref="MetricsPath"/> on
/// the HTTP listener, under the same authentication as the API.
/// </summary>
internal static class SchedulerTelemetry
{
    public const string MetricsPath = "/metrics";

    /// <summary>Registers the MeterProvider and the store-wide gauges of <paramref name="runtime"/>'s namespaces.</summary>
    public static void AddMetrics(WebApplicationBuilder builder, SchedulerMetrics metrics, SchedulerRuntime runtime, ILogger logger)
    {
        _ = new StoreGauges(metrics.Meter, runtime.Options.EffectiveSchedulerId, () => runtime.Namespaces.Opened, runtime.Time, logger);
        builder.Services.AddOpenTelemetry().WithMetrics(meters => meters
            .AddMeter(SchedulerMetrics.MeterName)
            .AddAspNetCoreInstrumentation()
            .AddRuntimeInstrumentation()
            .AddPrometheusExporter());
    }

    /// <summary>
    /// Maps <see cref="MetricsPath"/>, answered on the HTTP listener only (<paramref name="httpPort"/>: its bound port,
    /// null when it is off); with authentication on, it needs a token whose role may read.
    /// </summary>
    public static void MapMetrics(WebApplication web, Func<int?> httpPort, bool authenticated)
    {
        var endpoint = web.MapPrometheusScrapingEndpoint(MetricsPath, meterProvider: null, optionsName: null, configureBranchedPipeline: branch => branch.Use((context, next) =>
        {
            if (context.Connection.LocalPort != httpPort())
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }

            return next(context);
        }));
        if (authenticated)
        {
            endpoint.RequireAuthorization(MethodPermissionRequirement.PolicyName);
        }
    }
}
