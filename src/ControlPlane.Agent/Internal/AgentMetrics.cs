using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using ControlPlane.V1;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace ControlPlane.Agent.Internal;

/// <summary>
/// The agent's instruments (meter <see cref="MeterName"/>) and, with <see cref="AgentOptions.MetricsListen"/>, their
/// Prometheus endpoint: an OpenTelemetry MeterProvider with the HttpListener exporter (no ASP.NET Core), plus the .NET
/// runtime and the HTTP client under gRPC (http.client.* of the calls to the scheduler).
/// </summary>
internal sealed class AgentMetrics : IDisposable
{
    public const string MeterName = "ControlPlane.Agent";

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _finished;
    private readonly MeterProvider? _provider;

    public AgentMetrics(AgentOptions options, AttemptTable attempts)
    {
        _finished = _meter.CreateCounter<long>("controlplane_agent_steps_finished", null,
            "Step attempts this agent ran to an end, by outcome (succeeded, failed, timed_out, cancelled).");
        _meter.CreateObservableGauge("controlplane_agent_steps_running", () => attempts.Running, null, "Step attempts running on this agent.");
        _meter.CreateObservableGauge("controlplane_agent_slots", () => new[]
        {
            new Measurement<int>(attempts.UsedSlots, new KeyValuePair<string, object?>("state", "used")),
            new Measurement<int>(Math.Max(0, options.Slots - attempts.UsedSlots), new KeyValuePair<string, object?>("state", "free")),
        }, null, "This agent's slots by state (used, free).");
        if (options.MetricsListen is { } listen)
        {
            var (host, port) = Parse(listen) ?? throw new ArgumentException($"MetricsListen '{listen}' is not HOST:PORT", nameof(options));
            _provider = Sdk.CreateMeterProviderBuilder()
                .AddMeter(MeterName)
                .AddRuntimeInstrumentation()
                .AddHttpClientInstrumentation()
                .AddPrometheusHttpListener(exporter =>
                {
                    // The exporter builds its prefix as a URI, which "+" is not: every interface is set on the listener itself.
                    exporter.Host = host == "+" ? "localhost" : host;
                    exporter.Port = port;
                    if (host == "+")
                    {
                        exporter.ConfigureHttpListener = (_, listener) =>
                        {
                            listener.Prefixes.Clear();
                            listener.Prefixes.Add(string.Create(CultureInfo.InvariantCulture, $"http://+:{port}/"));
                        };
                    }
                })
                .Build();
        }
    }

    /// <summary>Counts an attempt that ended with <paramref name="report"/> (a StepCompleted or a StepFailed).</summary>
    public void Finished(ConnectRequest report)
    {
        var outcome = report.MessageCase == ConnectRequest.MessageOneofCase.StepCompleted ? "succeeded"
            : report.StepFailed.Cancelled ? "cancelled"
            : report.StepFailed.TimedOut ? "timed_out"
            : "failed";
        _finished.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
    }

    public void Dispose()
    {
        _provider?.Dispose();
        _meter.Dispose();
    }

    /// <summary>
    /// HOST:PORT with a port of 1..65535 (HttpListener cannot pick one); null when it is not that. HttpListener answers
    /// only requests whose Host header names its host, so an unspecified address (0.0.0.0, [::], *) becomes "+":
    /// every interface, any Host header. IPv6 literals other than [::] are refused: HttpListener cannot parse them in a prefix.
    /// </summary>
    internal static (string Host, int Port)? Parse(string listen)
    {
        var colon = listen.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(listen.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            return null;
        }

        var host = listen[..colon];
        if (host is "*" or "+" or "0.0.0.0" or "[::]")
        {
            return ("+", port);
        }

        return host.Length > 0 && !host.Contains(':', StringComparison.Ordinal) && Uri.CheckHostName(host) != UriHostNameType.Unknown ? (host, port) : null;
    }

    /// <summary>Whether <paramref name="listen"/> serves only this host (loopback name or address).</summary>
    internal static bool IsLoopback(string listen) =>
        Parse(listen) is var (host, _) && (host == "localhost" || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address)));
}
