using System.Reflection;
using ControlPlane.Agent.Hosting;
using ControlPlane.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Agent;

/// <summary>
/// Builds an agent process on the .NET Generic Host: settings from the shared scheme (see <see cref="Settings"/>),
/// console logging to stderr, .NET step handlers, systemd notify, and SIGTERM/SIGINT handled as drain-then-exit.
/// </summary>
/// <example>
/// <code>
/// var builder = AgentHostBuilder.Create(args);
/// builder.AddStepHandler&lt;ResizeImages&gt;("resize-images");
/// return await builder.RunAsync();
/// </code>
/// </example>
public sealed partial class AgentHostBuilder
{
    /// <summary>What the Generic Host's shutdown timeout allows beyond the drain's own deadlines, for the last reports to leave.</summary>
    private static readonly TimeSpan ShutdownMargin = TimeSpan.FromSeconds(10);

    private readonly string[] _args;
    private readonly List<IComputeFramework> _extraFrameworks = [];

    private AgentHostBuilder(string[] args)
    {
        _args = args;
    }

    /// <summary>The "dotnet" framework; handlers registered here are announced in Hello.</summary>
    public DotnetFramework Dotnet { get; } = new();

    /// <summary>
    /// An agent host for <paramref name="args"/>: --scheduler URL, --agent-id ID, --slots N, --queues a,b, --labels k=v,k2=v2
    /// and the rest of <see cref="Settings"/>; read, with the environment and the --config file, when it runs.
    /// </summary>
    public static AgentHostBuilder Create(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        return new AgentHostBuilder([.. args]);
    }

    /// <summary>Registers a handler type; each attempt gets a new instance.</summary>
    public AgentHostBuilder AddStepHandler<THandler>(string name)
        where THandler : IStepHandler, new()
    {
        Dotnet.Register<THandler>(name);
        return this;
    }

    /// <summary>Registers a delegate as a handler.</summary>
    public AgentHostBuilder AddStepHandler(string name, Func<IStepContext, Task<StepHandlerResult>> handler)
    {
        Dotnet.Register(name, handler);
        return this;
    }

    /// <summary>Adds a compute framework besides "shell" and "dotnet".</summary>
    public AgentHostBuilder AddFramework(IComputeFramework framework)
    {
        ArgumentNullException.ThrowIfNull(framework);
        _extraFrameworks.Add(framework);
        return this;
    }

    /// <summary>
    /// Runs this process's agent until drained: the console, the process environment, and SIGTERM/SIGINT as the stop.
    /// Returns the process exit code: 0 after a clean drain, 2 for invalid settings, 1 when the agent failed.
    /// </summary>
    public Task<int> RunAsync()
    {
        // First, so a signal at any later moment starts the drain instead of killing the process.
        var stop = DaemonSignals.Install();
        var program = Assembly.GetEntryAssembly()?.GetName().Name ?? "cp-agent";
        return RunAsync(DaemonContext.FromProcess(program), stop);
    }

    /// <summary>
    /// Runs the agent until drained: <paramref name="stopToken"/> starts the drain (nothing new is taken, running steps
    /// get <see cref="AgentOptions.ShutdownGracePeriod"/> to finish), as does the scheduler's Drain. Prints
    /// "agent ID connecting to URL" when it starts and "agent ID stopped" after a clean drain on the context's output.
    /// </summary>
    public async Task<int> RunAsync(DaemonContext context, CancellationToken stopToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        using var trimming = DaemonMemory.StartTrimming();
        if (!Settings.TryLoad(_args, context, out var configuration, out var exitCode))
        {
            return exitCode;
        }

        var options = configuration.Options;
        try
        {
            Internal.WorkRoot.Prepare(options.EffectiveWorkRoot);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            // Before anything connects: steps must never run in a directory another user can reach.
            await context.Error.WriteLineAsync("error: " + ex.Message).ConfigureAwait(false);
            return 2;
        }

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            // The settings scheme is the only configuration: the host's defaults (its appsettings.json, DOTNET_
            // variables, its own flag parsing) would be a second, competing one.
            DisableDefaults = true,
            ApplicationName = context.ProgramName,
            ContentRootPath = context.BaseDirectory,
        });
        builder.Logging.ClearProviders()
            .SetMinimumLevel(configuration.LogLevel)
            .AddFilter("Microsoft", LogLevel.Warning)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            })

            // Logs go to stderr; stdout carries only the lines scripts wait for.
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);

        // DaemonSignals owns the signals; under systemd, AddSystemd swaps in its lifetime, which sends READY=1 once the
        // agent has started and STOPPING=1 when it drains.
        builder.Services.AddSingleton<IHostLifetime, AgentLifetime>();
        builder.Services.AddSystemd();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = ShutdownTimeout(options));
        builder.Services.AddSingleton(services => new AgentService(
            options,
            loggerFactory => AgentRunner.CreateDefaultFrameworks(options, loggerFactory, Dotnet).Concat(_extraFrameworks).ToList(),
            services.GetRequiredService<ILoggerFactory>(),
            services.GetRequiredService<IHostApplicationLifetime>(),
            context.Out));
        builder.Services.AddHostedService(services => services.GetRequiredService<AgentService>());

        using var host = builder.Build();
        var agent = host.Services.GetRequiredService<AgentService>();
        try
        {
            await host.StartAsync(stopToken).ConfigureAwait(false);
            await host.WaitForShutdownAsync(stopToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stopToken.IsCancellationRequested)
        {
            // Stopped while starting: stop what did start.
            await host.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }

        if (agent.Drained)
        {
            await context.Out.WriteLineAsync($"agent {options.AgentId} stopped").ConfigureAwait(false);
            await context.Out.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            return 0;
        }

        return 1;
    }

    /// <summary>
    /// The Generic Host's shutdown timeout: the drain's own deadlines (the grace period, the kill grace, one connect
    /// timeout to deliver the results) plus a margin, so the host never cuts a drain short.
    /// </summary>
    public static TimeSpan ShutdownTimeout(AgentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.ShutdownGracePeriod + options.KillGracePeriod + options.ConnectTimeout + ShutdownMargin;
    }
}
