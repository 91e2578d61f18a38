using System.Runtime.InteropServices;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Agent;

/// <summary>
/// Builds an agent process: options from appsettings.json, CP_AGENT__* environment variables and flags,
/// console logging, .NET step handlers, and SIGTERM/SIGINT handled as drain-then-exit.
/// </summary>
/// <example>
/// <code>
/// var builder = AgentHostBuilder.Create(args);
/// builder.AddStepHandler&lt;ResizeImages&gt;("resize-images");
/// return await builder.RunAsync();
/// </code>
/// </example>
public sealed class AgentHostBuilder
{
    private static readonly Dictionary<string, string> SwitchMappings = new(StringComparer.Ordinal)
    {
        ["--scheduler"] = "Agent:SchedulerAddress",
        ["--id"] = "Agent:AgentId",
        ["--slots"] = "Agent:Slots",
        ["--queues"] = "Agent:Queues",
        ["--labels"] = "Agent:Labels",
        ["--work-root"] = "Agent:WorkRoot",
    };

    private readonly List<IComputeFramework> _extraFrameworks = [];

    private AgentHostBuilder(IConfiguration configuration)
    {
        Configuration = configuration;
    }

    /// <summary>The merged configuration (appsettings.json, then environment, then flags).</summary>
    public IConfiguration Configuration { get; }

    /// <summary>The "dotnet" framework; handlers registered here are announced in Hello.</summary>
    public DotnetFramework Dotnet { get; } = new();

    /// <summary>
    /// Reads configuration. Flags: --scheduler URL, --id ID, --slots N, --queues a,b, --labels k=v,k2=v2,
    /// --work-root DIR, or any --Agent:Property value. Environment: CP_AGENT__SLOTS=4 and so on.
    /// </summary>
    public static AgentHostBuilder Create(string[] args)
    {
        var configuration = new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddEnvironmentVariables("CP_")
            .AddCommandLine(args, SwitchMappings)
            .Build();
        return new AgentHostBuilder(configuration);
    }

    /// <summary>Binds <see cref="AgentOptions"/> from section "Agent"; lists may also be given comma-separated.</summary>
    public static AgentOptions BindOptions(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection("Agent");
        var options = new AgentOptions();
        var defaultQueues = options.Queues;
        options.Queues = [];
        section.Bind(options);
        if (section["Queues"] is { } queueList)
        {
            options.Queues = queueList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        }
        else if (options.Queues.Count == 0)
        {
            options.Queues = defaultQueues;
        }

        if (section["Labels"] is { } labelList)
        {
            foreach (var pair in labelList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    throw new ArgumentException($"Agent:Labels entry '{pair}' is not key=value; write labels like team=vision,gpu=a100.");
                }

                options.Labels[pair[..eq]] = pair[(eq + 1)..];
            }
        }

        return options;
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

    /// <summary>Runs the agent until drained. Returns the process exit code: 0 after a clean drain, 2 for invalid options.</summary>
    public async Task<int> RunAsync()
    {
        AgentOptions options;
        try
        {
            options = BindOptions(Configuration);
            options.Validate();
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException)
        {
            await Console.Error.WriteLineAsync(ex.Message).ConfigureAwait(false);
            return 2;
        }

        using var loggerFactory = LoggerFactory.Create(logging => logging
            .AddConfiguration(Configuration.GetSection("Logging"))
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            }));

        // SIGTERM and Ctrl+C start a drain instead of killing the process; a second signal does not shorten the grace period.
        using var stopping = new CancellationTokenSource();
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            stopping.Cancel();
        }

        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);

        var frameworks = AgentRunner.CreateDefaultFrameworks(options, loggerFactory, Dotnet).Concat(_extraFrameworks);
        await AgentRunner.RunAsync(options, frameworks, loggerFactory, stopping.Token).ConfigureAwait(false);
        return 0;
    }
}
