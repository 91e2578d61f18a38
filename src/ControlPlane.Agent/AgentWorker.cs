using ControlPlane.Agent.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.Retry;

namespace ControlPlane.Agent;

/// <summary>
/// One agent: keeps a duplex stream to the scheduler (reconnecting with backoff), runs the attempts
/// it is assigned with its compute frameworks, and reports their progress and results.
/// </summary>
/// <remarks>
/// A coordinator: the stream is <see cref="SchedulerSession"/>, the attempts held are <see cref="AttemptTable"/>,
/// running them is <see cref="AttemptRunner"/>; this class reconnects, drains and enforces the shutdown grace.
/// </remarks>
public sealed class AgentWorker : IDisposable
{
    private readonly AgentOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private readonly Outbox _outbox;
    private readonly AttemptTable _attempts;
    private readonly AttemptRunner _runner;
    private readonly SchedulerSession _session;
    private readonly AgentMetrics _metrics;
    private readonly CancellationTokenSource _hardStop = new();
    private readonly CancellationTokenSource _exited = new();
    private volatile bool _localStop;
    private Task _grace = Task.CompletedTask;

    /// <summary>Creates an agent; call <see cref="RunAsync"/> to connect.</summary>
    /// <param name="options">Validated with <see cref="AgentOptions.Validate"/> here.</param>
    /// <param name="frameworks">The compute frameworks it runs; names must be unique.</param>
    /// <param name="loggerFactory">Where it logs; none by default.</param>
    /// <param name="timeProvider">Clock for heartbeats, grace periods and backoff. Default is the system clock.</param>
    public AgentWorker(AgentOptions options, IEnumerable<IComputeFramework> frameworks, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(frameworks);
        options.Validate();
        Internal.WorkRoot.Prepare(options.EffectiveWorkRoot);
        _options = options;
        var byName = new Dictionary<string, IComputeFramework>(StringComparer.Ordinal);
        foreach (var framework in frameworks)
        {
            if (!byName.TryAdd(framework.Name, framework))
            {
                throw new ArgumentException($"Two compute frameworks are named '{framework.Name}'; give each a distinct name.", nameof(frameworks));
            }
        }

        if (byName.Count == 0)
        {
            throw new ArgumentException("An agent needs at least one compute framework, e.g. new ShellFramework().", nameof(frameworks));
        }

        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<AgentWorker>();
        _timeProvider = timeProvider ?? TimeProvider.System;
        _outbox = new Outbox(options.MaxBufferedReports);
        _attempts = new AttemptTable(options.AgentId, options.Slots);
        _metrics = new AgentMetrics(options, _attempts);
        if (options.MetricsListen is { } listen && !AgentMetrics.IsLoopback(listen))
        {
            AgentLog.MetricsExposed(_logger, listen);
        }

        _runner = new AttemptRunner(options, byName, _attempts, _outbox, _logger, _timeProvider) { Metrics = _metrics };
        _session = new SchedulerSession(options, byName.Values, _attempts, _runner, _outbox, _logger, _timeProvider);
    }

    /// <summary>Completes when the first Welcome has been received.</summary>
    public Task Connected => _session.Connected;

    /// <summary>True once draining: no new assignments are taken.</summary>
    public bool IsDraining => _attempts.IsDraining;

    /// <summary>Attempts running now.</summary>
    public int RunningAttempts => _attempts.Running;

    /// <summary>
    /// Connects and serves until drained: after <paramref name="stoppingToken"/> fires (SIGTERM) or the
    /// scheduler sends Drain, it takes nothing new, lets running steps finish (on a local stop, for at most
    /// <see cref="AgentOptions.ShutdownGracePeriod"/>), sends their results and returns.
    /// </summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        await using var stopRegistration = stoppingToken.Register(() => BeginDrain("agent stopping", local: true)).ConfigureAwait(false);
        var pipeline = new ResiliencePipelineBuilder { TimeProvider = _timeProvider }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(ex => !_hardStop.IsCancellationRequested),
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(200),
                MaxDelay = _options.MaxReconnectDelay,
                OnRetry = args =>
                {
                    AgentLog.Reconnecting(_logger, args.AttemptNumber + 1, args.RetryDelay, args.Outcome.Exception?.Message ?? "stream ended");
                    return default;
                },
            })
            .Build();

        try
        {
            // Each pass is one outage: a session that got its Welcome and later broke starts a new pass, so backoff restarts from short delays.
            while (!_session.IsFinished)
            {
                var finished = await pipeline.ExecuteAsync(_session.RunAsync, _hardStop.Token).ConfigureAwait(false);
                if (finished)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (_hardStop.IsCancellationRequested)
        {
            AgentLog.GaveUpFlushing(_logger, _outbox.Count);
        }
        finally
        {
            await _exited.CancelAsync().ConfigureAwait(false);
            await _runner.StopAllAsync().ConfigureAwait(false);

            // The grace timer ends as soon as _exited fires; awaiting it means nothing touches the token sources after RunAsync.
            await _grace.ConfigureAwait(false);
            AgentLog.Stopped(_logger, _options.AgentId);
        }
    }

    /// <summary>Stops taking new steps and exits once the running ones have finished and been reported.</summary>
    public void Drain(string reason) => BeginDrain(reason, local: false);

    private void BeginDrain(string reason, bool local)
    {
        if (local && !_localStop)
        {
            _localStop = true;
            _grace = EnforceShutdownGraceAsync();
        }

        _session.Drain(reason);
    }

    private async Task EnforceShutdownGraceAsync()
    {
        // Order on a local stop: let steps finish for the grace period, then stop them (their process trees are
        // killed within the kill grace), then allow one connect timeout to deliver the results, then give up.
        try
        {
            await Task.Delay(_options.ShutdownGracePeriod, _timeProvider, _exited.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        await _runner.StopRunningAsync("shutdown grace period ended").ConfigureAwait(false);

        try
        {
            await Task.Delay(_options.KillGracePeriod + _options.ConnectTimeout, _timeProvider, _exited.Token).ConfigureAwait(false);
            await _hardStop.CancelAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The agent finished within the deadline.
        }
    }

    /// <summary>Releases the worker's token sources; call after <see cref="RunAsync"/> has returned.</summary>
    public void Dispose()
    {
        _hardStop.Dispose();
        _exited.Dispose();
        _metrics.Dispose();
    }
}
