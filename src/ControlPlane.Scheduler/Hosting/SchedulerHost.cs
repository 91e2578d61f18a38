using ControlPlane.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Hosting;

/// <summary>
/// Runs a scheduler replica as a process (cp-scheduler, cpctl server): settings from the shared scheme (see
/// <see cref="Settings"/>), validated before anything starts; the stop token (SIGTERM through <see cref="DaemonSignals"/>)
/// or the service manager shuts it down gracefully. Under systemd it reports READY=1 once it listens, and STOPPING=1.
/// </summary>
public static partial class SchedulerHost
{
    /// <summary>Exit code for invalid settings or flags.</summary>
    public const int InvalidConfigurationExitCode = SettingException.ExitCode;

    /// <summary>Exit code when the server fails to start (port taken, store unreachable).</summary>
    public const int StartFailedExitCode = 1;

    /// <summary>
    /// Loads the settings, starts the scheduler, prints "scheduler listening on URL" on the context's output once it
    /// accepts calls, and runs until <paramref name="stopToken"/> fires or the host is asked to stop; then shuts down
    /// gracefully and prints "scheduler stopped". Returns the process exit code.
    /// </summary>
    /// <param name="storeFactory">Creates the stores when Redis is configured (the Redis stores live in their own assembly); unused otherwise.</param>
    /// <param name="stopToken">Starts the graceful shutdown; a process passes <see cref="DaemonSignals.Install"/>'s token.</param>
    public static async Task<int> RunAsync(
        string[] args,
        Func<SchedulerOptions, CancellationToken, Task<INamespaceStores>>? storeFactory,
        DaemonContext context,
        CancellationToken stopToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(context);
        using var trimming = DaemonMemory.StartTrimming();
        if (!Settings.TryLoad(args, context, out var configuration, out var exitCode))
        {
            return exitCode;
        }

        var options = configuration.Options;
        using var loggerFactory = LoggerFactory.Create(b => b
            .SetMinimumLevel(configuration.LogLevel)
            .AddFilter("Microsoft", LogLevel.Warning)
            .AddSimpleConsole(o => o.SingleLine = true)

            // Logs go to stderr; stdout carries only the lines scripts wait for.
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));

        var server = new SchedulerServer(options, options.Redis is null ? null : storeFactory, loggerFactory)
        {
            // Under systemd (Type=notify) the host reports READY=1 once the listener is bound, and STOPPING=1.
            ConfigureHost = builder => builder.Services.AddSystemd(),
        };
        await using (server.ConfigureAwait(false))
        {
            var started = false;
            try
            {
                await server.StartAsync(stopToken).ConfigureAwait(false);
                started = true;
            }
            catch (OperationCanceledException) when (stopToken.IsCancellationRequested)
            {
                // Stopped before it listened: shut down what did start, as after any stop.
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                await context.Error.WriteLineAsync($"error: the scheduler failed to start: {ex.GetBaseException().Message}").ConfigureAwait(false);
                return StartFailedExitCode;
            }

            if (started)
            {
                foreach (var address in server.Addresses)
                {
                    await context.Out.WriteLineAsync($"scheduler listening on {address.ToString().TrimEnd('/')}").ConfigureAwait(false);
                }

                if (server.HttpAddress is { } http)
                {
                    await context.Out.WriteLineAsync($"dashboard, JSON API and /metrics on {http}").ConfigureAwait(false);
                }

                await context.Out.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                var stopRequested = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                using (server.StopRequested.Register(() => stopRequested.TrySetResult()))
                using (stopToken.Register(() => stopRequested.TrySetResult()))
                {
                    await stopRequested.Task.ConfigureAwait(false);
                }
            }

            await server.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await context.Out.WriteLineAsync("scheduler stopped").ConfigureAwait(false);
            await context.Out.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }

        return 0;
    }
}
