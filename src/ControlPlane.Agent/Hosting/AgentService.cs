using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Agent.Hosting;

/// <summary>
/// The agent worker as the Generic Host's background service: the host's stopping token starts the drain, and when
/// the worker ends on its own (the scheduler drained it) the whole host stops with it.
/// </summary>
internal sealed partial class AgentService : BackgroundService
{
    private readonly AgentOptions _options;
    private readonly Func<ILoggerFactory, IReadOnlyList<IComputeFramework>> _frameworks;
    private readonly ILoggerFactory _loggerFactory;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly TextWriter _output;
    private readonly ILogger _logger;

    public AgentService(
        AgentOptions options,
        Func<ILoggerFactory, IReadOnlyList<IComputeFramework>> frameworks,
        ILoggerFactory loggerFactory,
        IHostApplicationLifetime lifetime,
        TextWriter output)
    {
        _options = options;
        _frameworks = frameworks;
        _loggerFactory = loggerFactory;
        _lifetime = lifetime;
        _output = output;
        _logger = loggerFactory.CreateLogger("ControlPlane.Agent.Host");
    }

    /// <summary>True once the worker has returned after its drain, without an error.</summary>
    public bool Drained { get; private set; }

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // Printed before the host reports it started (READY=1 under systemd), for scripts that wait for it.
        await _output.WriteLineAsync(
            $"agent {_options.AgentId} connecting to {_options.SchedulerAddress} ({_options.Slots} slots, queues {string.Join(",", _options.Queues)})").ConfigureAwait(false);
        await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await AgentRunner.RunAsync(_options, _frameworks(_loggerFactory), _loggerFactory, stoppingToken).ConfigureAwait(false);
            Drained = true;
        }
#pragma warning disable CA1031 // The host logs why the agent ended and stops the process; nothing above it could act on the exception.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            LogFailed(_logger, ex);
        }
        finally
        {
            _lifetime.StopApplication();
        }
    }

    [LoggerMessage(EventId = 140, Level = LogLevel.Critical, Message = "The agent failed and stops")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
