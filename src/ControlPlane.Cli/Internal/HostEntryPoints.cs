using ControlPlane.Agent;
using ControlPlane.Scheduler;
using ControlPlane.Scheduler.Hosting;
using ControlPlane.Scheduler.Redis;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Cli.Internal;

/// <summary>
/// Where cpctl hands over to the scheduler and agent libraries. Each entry point runs until
/// the cancellation token fires (Ctrl+C / SIGTERM) and returns the exit code.
/// </summary>
internal static class HostEntryPoints
{
    /// <summary>Runs a scheduler replica (ControlPlane.Scheduler's host) until stopped.</summary>
    public static Task<int> RunSchedulerAsync(SchedulerHostSettings settings, CliContext cli, CancellationToken cancellationToken)
    {
        var args = new List<string> { "--listen", settings.Listen };
        if (settings.Redis is not null)
        {
            args.Add("--redis");
            args.Add(settings.Redis);
        }

        return SchedulerHost.RunAsync([.. args], ConnectRedisAsync, cli.Out, cli.Error, cancellationToken);
    }

    /// <summary>Runs an agent daemon until stopped (it then drains: running steps finish first) or drained by the scheduler.</summary>
    public static async Task<int> RunAgentAsync(AgentHostSettings settings, CliContext cli, CancellationToken cancellationToken)
    {
        var options = new AgentOptions
        {
            SchedulerAddress = settings.SchedulerAddress,
            Slots = settings.Slots,
            Queues = [.. settings.Queues],
            Labels = new Dictionary<string, string>(settings.Labels, StringComparer.Ordinal),
        };
        if (settings.AgentId is not null)
        {
            options.AgentId = settings.AgentId;
        }

        using var loggerFactory = CreateLoggerFactory(LogLevel.Information);
        await cli.Out.WriteLineAsync($"agent {options.AgentId} connecting to {options.SchedulerAddress} ({options.Slots} slots, queues {string.Join(",", options.Queues)})").ConfigureAwait(false);
        await AgentRunner.RunAsync(options, AgentRunner.CreateDefaultFrameworks(options, loggerFactory), loggerFactory, cancellationToken).ConfigureAwait(false);
        await cli.Out.WriteLineAsync($"agent {options.AgentId} stopped").ConfigureAwait(false);
        return ExitCodes.Success;
    }

    /// <summary>Runs scheduler, agent and embedded store in one process and, given a file, runs it to its end.</summary>
    public static Task<int> RunDevAsync(DevSettings settings, CliContext cli, CancellationToken cancellationToken) =>
        DevSession.RunAsync(settings, cli, cancellationToken);

    /// <summary>Logs go to stderr so stdout carries only what scripts read.</summary>
    public static ILoggerFactory CreateLoggerFactory(LogLevel level) => LoggerFactory.Create(b => b
        .SetMinimumLevel(level)
        .AddSimpleConsole(o => o.SingleLine = true)
        .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));

    private static async Task<IRunStore> ConnectRedisAsync(SchedulerOptions options, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return await RedisRunStore.ConnectAsync(options.Redis!, options.Namespace, options.CreateStoreOptions(), TimeProvider.System).ConfigureAwait(false);
    }
}
