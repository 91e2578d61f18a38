using ControlPlane.Agent;
using ControlPlane.Scheduler;
using ControlPlane.Scheduler.Hosting;
using ControlPlane.Scheduler.Redis;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Cli.Internal;

/// <summary>
/// Where cpctl hands over to the scheduler and agent libraries. <c>cpctl server</c> and <c>cpctl agent</c> are the
/// daemons themselves: the same settings table, loader and host as cp-scheduler and cp-agent, only named differently.
/// </summary>
internal static class HostEntryPoints
{
    /// <summary>Runs a scheduler replica until <paramref name="stopToken"/> fires; returns the exit code.</summary>
    public static Task<int> RunSchedulerAsync(string[] args, CliContext cli, CancellationToken stopToken)
    {
        var context = cli.ForDaemon("cpctl server", SchedulerHost.Settings.Settings.Select(s => s.EnvironmentVariable));
        return SchedulerHost.RunAsync(args, ConnectRedisAsync, context, stopToken);
    }

    /// <summary>Runs an agent until <paramref name="stopToken"/> fires (it then drains: running steps finish first) or the scheduler drains it.</summary>
    public static Task<int> RunAgentAsync(string[] args, CliContext cli, CancellationToken stopToken)
    {
        var context = cli.ForDaemon("cpctl agent", AgentHostBuilder.Settings.Settings.Select(s => s.EnvironmentVariable));
        return AgentHostBuilder.Create(args).RunAsync(context, stopToken);
    }

    /// <summary>Runs scheduler, agent and embedded store in one process and, given a file, runs it to its end.</summary>
    public static Task<int> RunDevAsync(DevSettings settings, CliContext cli, CancellationToken cancellationToken) =>
        DevSession.RunAsync(settings, cli, cancellationToken);

    /// <summary>Logs go to stderr so stdout carries only what scripts read.</summary>
    public static ILoggerFactory CreateLoggerFactory(LogLevel level) => LoggerFactory.Create(b => b
        .SetMinimumLevel(level)
        .AddSimpleConsole(o => o.SingleLine = true)
        .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));

    private static async Task<INamespaceStores> ConnectRedisAsync(SchedulerOptions options, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return await RedisNamespaceStores.ConnectAsync(options.Redis!, options.CreateStoreOptions()).ConfigureAwait(false);
    }
}
