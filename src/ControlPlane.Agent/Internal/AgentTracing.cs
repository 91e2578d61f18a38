using System.Diagnostics;
using ControlPlane.V1;
using OpenTelemetry;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace ControlPlane.Agent.Internal;

/// <summary>
/// The agent's traces: an execution span per attempt (<see cref="Source"/>), the child of the scheduler's attempt span
/// whose context the assignment carries, and the gRPC client spans of its calls. They are exported over OTLP only
/// when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (the standard OTEL_EXPORTER_OTLP_* and OTEL_SERVICE_NAME variables
/// apply); otherwise nothing listens to the source, and starting a span costs a check that finds no listener.
/// </summary>
internal static class AgentTracing
{
    /// <summary>The ActivitySource of the execution spans.</summary>
    public const string SourceName = "ControlPlane.Agent";

    /// <summary>The standard variable whose presence turns export on.</summary>
    public const string EndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>Starts OTLP export for the agent's lifetime when <see cref="EndpointVariable"/> is set; null otherwise.</summary>
    public static TracerProvider? StartExport(AgentOptions options)
    {
        if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(EndpointVariable)))
        {
            return null;
        }

        return Sdk.CreateTracerProviderBuilder()
            // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, detected last, win over these defaults.
            .ConfigureResource(resource => resource
                .AddService("controlplane-agent", serviceInstanceId: options.AgentId)
                .AddEnvironmentVariableDetector())
            .AddSource(SourceName)
            .AddGrpcClientInstrumentation()
            .AddOtlpExporter()
            .Build();
    }

    /// <summary>
    /// Starts the execution span of <paramref name="assignment"/>, a child of <see cref="Assignment.Traceparent"/> (a
    /// trace of its own when it carries none), and makes it current; null when nothing listens.
    /// </summary>
    public static Activity? StartExecution(Assignment assignment, string agentId)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        _ = ActivityContext.TryParse(assignment.Traceparent, null, isRemote: true, out var parent);

        // Not a child of whatever is current here (the Connect call's client span).
        Activity.Current = null;
        var span = Source.StartActivity("execute step", ActivityKind.Internal, parent);
        span?.SetTag("controlplane.run.id", assignment.RunId);
        span?.SetTag("controlplane.step.id", assignment.StepId);
        span?.SetTag("controlplane.attempt", assignment.Attempt);
        span?.SetTag("controlplane.agent.id", agentId);
        span?.SetTag("controlplane.queue", assignment.Spec?.Queue ?? string.Empty);
        span?.SetTag("controlplane.framework", assignment.Spec?.Framework ?? string.Empty);
        return span;
    }

    /// <summary>Ends the execution span with the attempt's outcome; a failure marks it an error.</summary>
    public static void EndExecution(Activity? span, StepResult result)
    {
        if (span is null)
        {
            return;
        }

        span.SetTag("controlplane.outcome", result.Succeeded ? "succeeded" : result.Cancelled ? "cancelled" : "failed");
        if (!result.Succeeded)
        {
            var error = result.Error ?? "failed";
            span.SetStatus(ActivityStatusCode.Error, error.Length > 256 ? error[..256] : error);
        }

        span.Stop();
    }
}
