using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Agent.Hosting;

/// <summary>
/// The agent worker as a Generic Host service: the host's stop starts the drain, and when the worker ends on its own
/// (the scheduler drained it) the whole host stops with it. Not a BackgroundService: that one starts its work through
/// a Task.Run cancelled by the stop, so a SIGTERM right after start would skip the worker and end as a failure.
/// </summary>
internal sealed partial class AgentService : IHostedService, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private Task _running = Task.CompletedTask;
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

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // Printed before the host reports it started (READY=1 under systemd), for scripts that wait for it.
        await _output.WriteLineAsync(
            $"agent {_options.AgentId} connecting to {_options.SchedulerAddress} ({_options.Slots} slots, queues {string.Join(",", _options.Queues)})").ConfigureAwait(false);
        await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
        _running = ExecuteAsync(_stopping.Token);
    }

    /// <summary>Starts the drain and waits for it, until the host's shutdown timeout (<paramref name="cancellationToken"/>).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _running.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public void Dispose() => _stopping.Dispose();

    private async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Off the host's start path: the worker runs until drained.
        await Task.Yield();
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
