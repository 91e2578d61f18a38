using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Hosting;

/// <summary>
/// Runs a scheduler replica as a process: options from appsettings.json (section "Scheduler"), then CP_*
/// environment variables, then flags; validated before anything starts; SIGTERM or Ctrl+C shuts it down gracefully.
/// </summary>
public static partial class SchedulerHost
{
    /// <summary>Exit code for invalid options or flags.</summary>
    public const int InvalidConfigurationExitCode = 2;

    /// <summary>Exit code when the server fails to start (port taken, store unreachable).</summary>
    public const int StartFailedExitCode = 1;

    // Setting name, flag, environment variable, description.
    private static readonly (string Name, string Flag, string Env, string Help)[] Settings =
    [
        ("Listen", "--listen", "CP_LISTEN", "HOST:PORT to listen on (port 0: a free port). Default 127.0.0.1:7070."),
        ("Redis", "--redis", "CP_REDIS", "Redis HOST:PORT for the run store. Default: the in-process embedded store."),
        ("Namespace", "--namespace", "CP_NAMESPACE", "Store namespace. Default \"default\"."),
        ("SchedulerId", "--scheduler-id", "CP_SCHEDULER_ID", "Replica id. Default HOST-PID."),
        ("LeaseDuration", "--lease-duration", "CP_LEASE_DURATION", "Attempt lease, e.g. 30s. Default 30s."),
        ("HeartbeatInterval", "--heartbeat-interval", "CP_HEARTBEAT_INTERVAL", "Agent heartbeat interval, e.g. 5s. Default 5s."),
        ("MaintenanceInterval", "--maintenance-interval", "CP_MAINTENANCE_INTERVAL", "Reaper interval, e.g. 1s. Default 1s."),
        ("ClaimBatch", "--claim-batch", "CP_CLAIM_BATCH", "Most steps per claim. Default 64."),
        ("ReportBatch", "--report-batch", "CP_REPORT_BATCH", "Most reports per group commit. Default 256."),
        ("ShutdownTimeout", "--shutdown-timeout", "CP_SHUTDOWN_TIMEOUT", "Longest graceful shutdown, e.g. 10s. Default 10s."),
        ("LogLevel", "--log-level", "CP_LOG_LEVEL", "Trace, Debug, Information, Warning, Error. Default Information."),
    ];

    /// <summary>
    /// Parses <paramref name="args"/>, starts the scheduler, prints "scheduler listening on URL" on
    /// <paramref name="output"/> once it accepts calls, and runs until SIGTERM/SIGINT or <paramref name="cancellationToken"/>.
    /// Returns the process exit code.
    /// </summary>
    /// <param name="storeFactory">Creates the store when Redis is configured (the Redis store lives in its own assembly); unused otherwise.</param>
    public static async Task<int> RunAsync(
        string[] args,
        Func<SchedulerOptions, CancellationToken, Task<IRunStore>>? storeFactory,
        TextWriter output,
        TextWriter error,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        if (args.Any(a => a is "--help" or "-h"))
        {
            await output.WriteLineAsync(Usage()).ConfigureAwait(false);
            return 0;
        }

        SchedulerOptions options;
        LogLevel logLevel;
        try
        {
            (options, logLevel) = Load(args, Environment.GetEnvironmentVariables(), AppContext.BaseDirectory);
            options.Validate();
        }
        catch (ArgumentException ex)
        {
            var message = ex.ParamName is null ? ex.Message : ex.Message.Replace($" (Parameter '{ex.ParamName}')", "", StringComparison.Ordinal);
            await error.WriteLineAsync($"scheduler: invalid configuration: {message}").ConfigureAwait(false);
            return InvalidConfigurationExitCode;
        }

        using var loggerFactory = LoggerFactory.Create(b => b
            .SetMinimumLevel(logLevel)
            .AddFilter("Microsoft", LogLevel.Warning)
            .AddSimpleConsole(o => o.SingleLine = true)

            // Logs go to stderr; stdout carries only the lines scripts wait for.
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));

        // SIGTERM and Ctrl+C start the graceful shutdown. The handlers stay registered until this method returns and
        // touch nothing that is disposed earlier, so a second signal during shutdown is absorbed.
        var signalled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle);

        var server = new SchedulerServer(options, options.Redis is null ? null : storeFactory, loggerFactory)
        {
            // Under systemd (Type=notify) the host reports READY=1 once the listener is bound, and STOPPING=1.
            ConfigureHost = builder => builder.Services.AddSystemd(),
        };
        await using (server.ConfigureAwait(false))
        {
            try
            {
                await server.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                await error.WriteLineAsync($"scheduler: failed to start: {ex.GetBaseException().Message}").ConfigureAwait(false);
                return StartFailedExitCode;
            }

            foreach (var address in server.Addresses)
            {
                await output.WriteLineAsync($"scheduler listening on {address.ToString().TrimEnd('/')}").ConfigureAwait(false);
            }

            await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            var stopRequested = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (server.StopRequested.Register(() => stopRequested.TrySetResult()))
            using (cancellationToken.Register(() => stopRequested.TrySetResult()))
            {
                await Task.WhenAny(signalled.Task, stopRequested.Task).ConfigureAwait(false);
            }

            await server.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await output.WriteLineAsync("scheduler stopped").ConfigureAwait(false);
            await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }

        return 0;

        void Handle(PosixSignalContext context)
        {
            // Keep the process alive until the graceful shutdown has run.
            context.Cancel = true;
            signalled.TrySetResult();
        }
    }

    /// <summary>
    /// Builds the options from appsettings.json in <paramref name="baseDirectory"/>, then <paramref name="environment"/>
    /// (CP_* variables), then <paramref name="args"/>; later sources win. Throws <see cref="ArgumentException"/> on unknown flags or bad values.
    /// </summary>
    public static (SchedulerOptions Options, LogLevel LogLevel) Load(string[] args, System.Collections.IDictionary environment, string baseDirectory)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(environment);
        var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var setting in Settings)
        {
            if (environment[setting.Env] is string value)
            {
                values[$"Scheduler:{setting.Name}"] = value;
            }
        }

        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string flag = arg, value;
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                flag = arg[..eq];
                value = arg[(eq + 1)..];
            }
            else if (i + 1 < args.Length)
            {
                value = args[++i];
            }
            else
            {
                throw new ArgumentException($"{arg} needs a value, e.g. {arg} VALUE");
            }

            var setting = Settings.FirstOrDefault(s => s.Flag == flag);
            if (setting.Name is null)
            {
                throw new ArgumentException($"unknown flag '{flag}'; known flags: {string.Join(", ", Settings.Select(s => s.Flag))}");
            }

            values[$"Scheduler:{setting.Name}"] = value;
        }

        var configuration = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(baseDirectory, "appsettings.json"), optional: true)
            .AddInMemoryCollection(values)
            .Build();
        var section = configuration.GetSection("Scheduler");
        var options = new SchedulerOptions();
        foreach (var setting in Settings)
        {
            var raw = section[setting.Name];
            if (raw is null)
            {
                continue;
            }

            Apply(options, setting.Name, raw, setting.Flag, setting.Env);
        }

        var level = LogLevel.Information;
        if (section["LogLevel"] is { } levelText && !Enum.TryParse(levelText, ignoreCase: true, out level))
        {
            throw new ArgumentException($"LogLevel '{levelText}' is not a level; use Trace, Debug, Information, Warning or Error (--log-level / CP_LOG_LEVEL)");
        }

        return (options, level);
    }

    private static void Apply(SchedulerOptions options, string name, string raw, string flag, string env)
    {
        var where = $"({flag} / {env} / Scheduler:{name})";
        switch (name)
        {
            case nameof(SchedulerOptions.Listen): options.Listen = raw; break;
            case nameof(SchedulerOptions.Redis): options.Redis = raw; break;
            case nameof(SchedulerOptions.Namespace): options.Namespace = raw; break;
            case nameof(SchedulerOptions.SchedulerId): options.SchedulerId = raw; break;
            case nameof(SchedulerOptions.LeaseDuration): options.LeaseDuration = Duration(raw, name, where); break;
            case nameof(SchedulerOptions.HeartbeatInterval): options.HeartbeatInterval = Duration(raw, name, where); break;
            case nameof(SchedulerOptions.MaintenanceInterval): options.MaintenanceInterval = Duration(raw, name, where); break;
            case nameof(SchedulerOptions.ShutdownTimeout): options.ShutdownTimeout = Duration(raw, name, where); break;
            case nameof(SchedulerOptions.ClaimBatch): options.ClaimBatch = Integer(raw, name, where); break;
            case nameof(SchedulerOptions.ReportBatch): options.ReportBatch = Integer(raw, name, where); break;
            default: break;
        }
    }

    /// <summary>Accepts 500ms, 30s, 5m, 1h, or a TimeSpan such as 00:00:30.</summary>
    private static TimeSpan Duration(string raw, string name, string where)
    {
        var match = DurationPattern().Match(raw.Trim());
        if (match.Success)
        {
            var amount = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
            return match.Groups[2].Value switch
            {
                "ms" => TimeSpan.FromMilliseconds(amount),
                "s" => TimeSpan.FromSeconds(amount),
                "m" => TimeSpan.FromMinutes(amount),
                _ => TimeSpan.FromHours(amount),
            };
        }

        if (TimeSpan.TryParse(raw, CultureInfo.InvariantCulture, out var span))
        {
            return span;
        }

        throw new ArgumentException($"{name} '{raw}' {where} is not a duration; use e.g. 500ms, 30s, 5m or 00:00:30");
    }

    private static int Integer(string raw, string name, string where) =>
        int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new ArgumentException($"{name} '{raw}' {where} is not a whole number");

    private static string Usage() =>
        "usage: cp-scheduler [flags]\n" + string.Join('\n', Settings.Select(s => $"  {s.Flag,-22} {s.Help} (env {s.Env})"));

    [GeneratedRegex(@"^(\d+(?:\.\d+)?)(ms|s|m|h)$", RegexOptions.CultureInvariant)]
    private static partial Regex DurationPattern();
}
