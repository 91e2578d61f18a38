using Microsoft.Extensions.Logging;

namespace ControlPlane.Agent;

/// <summary>The entry point hosts (cp-agent, cpctl agent, cpctl dev) call to run an agent until it is drained.</summary>
public static class AgentRunner
{
    /// <summary>
    /// Validates the options, connects and serves until <paramref name="stoppingToken"/> fires (then drains:
    /// running steps finish within <see cref="AgentOptions.ShutdownGracePeriod"/>) or the scheduler drains it.
    /// </summary>
    /// <exception cref="ArgumentException">The options are invalid; the message lists each problem and its fix.</exception>
    public static async Task RunAsync(AgentOptions options, IEnumerable<IComputeFramework> frameworks, ILoggerFactory? loggerFactory = null, CancellationToken stoppingToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);

        // Traces over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; nothing otherwise.
        using var tracing = Internal.AgentTracing.StartExport(options);
        using var worker = new AgentWorker(options, frameworks, loggerFactory);
        await worker.RunAsync(stoppingToken).ConfigureAwait(false);
    }

    /// <summary>The standard frameworks: "shell", and "dotnet" with the given handlers (none when null).</summary>
    public static IReadOnlyList<IComputeFramework> CreateDefaultFrameworks(AgentOptions options, ILoggerFactory? loggerFactory = null, DotnetFramework? dotnet = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        return
        [
            new ShellFramework(options.KillGracePeriod, loggerFactory?.CreateLogger<ShellFramework>(), options.PassEnv.ToArray()),
            dotnet ?? new DotnetFramework(options.KillGracePeriod, loggerFactory?.CreateLogger<DotnetFramework>()),
        ];
    }
}
