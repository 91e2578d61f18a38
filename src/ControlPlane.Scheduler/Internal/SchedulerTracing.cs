using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// The scheduler's traces: a span per step attempt (<see cref="Source"/>), and the ASP.NET Core server spans of every
/// gRPC and HTTP call. They are exported over OTLP only when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (the standard
/// OTEL_EXPORTER_OTLP_* and OTEL_SERVICE_NAME variables apply); otherwise nothing listens to the sources, and starting
/// a span costs a check that finds no listener.
/// </summary>
internal static class SchedulerTracing
{
    /// <summary>The ActivitySource of the attempt spans.</summary>
    public const string SourceName = "ControlPlane.Scheduler";

    /// <summary>The standard variable whose presence turns export on.</summary>
    public const string EndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>Adds tracing with OTLP export to the scheduler's host when <see cref="EndpointVariable"/> is configured.</summary>
    public static void Add(WebApplicationBuilder builder, SchedulerOptions options, INamespaceStores? stores)
    {
        if (string.IsNullOrWhiteSpace(builder.Configuration[EndpointVariable]))
        {
            return;
        }

        builder.Services.AddOpenTelemetry()
            // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, detected last, win over these defaults.
            .ConfigureResource(resource => resource
                .AddService("controlplane-scheduler", serviceInstanceId: options.EffectiveSchedulerId)
                .AddEnvironmentVariableDetector())
            .WithTracing(tracing =>
            {
                tracing.AddSource(SourceName)
                    .AddAspNetCoreInstrumentation(aspnet => aspnet.Filter = context => !IsProbe(context.Request.Path))
                    .AddOtlpExporter();
                (stores as IStoreTracing)?.AddTo(tracing);
            });
    }

    /// <summary>Probes and scrapes come every few seconds and say nothing about runs: no spans for them.</summary>
    private static bool IsProbe(PathString path) =>
        path.StartsWithSegments("/grpc.health.v1.Health", StringComparison.Ordinal)
        || path.StartsWithSegments("/healthz", StringComparison.Ordinal)
        || path.StartsWithSegments("/readyz", StringComparison.Ordinal)
        || path.StartsWithSegments("/metrics", StringComparison.Ordinal);
}
