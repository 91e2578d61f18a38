using System.Reflection;
using ControlPlane.Agent.Internal;
using ControlPlane.V1;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.Retry;

namespace ControlPlane.Agent;

/// <summary>
/// One agent: keeps a duplex stream to the scheduler (reconnecting with backoff), runs the attempts
/// it is assigned with its compute frameworks, and reports their progress and results.
/// </summary>
public sealed partial class AgentWorker
{
    private static readonly string Version =
        typeof(AgentWorker).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    private static readonly WriteOptions Buffered = new(WriteFlags.BufferHint);

    private readonly AgentOptions _options;
    private readonly Dictionary<string, IComputeFramework> _frameworks;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private readonly Outbox _outbox;
    private readonly Dictionary<long, AttemptState> _attempts = [];
    private readonly CancellationTokenSource _hardStop = new();
    private readonly CancellationTokenSource _exited = new();
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TimeSpan _heartbeatInterval;
    private PeriodicTimer? _heartbeatTimer;
    private int _usedSlots;
    private volatile bool _draining;
    private volatile bool _localStop;
    private int _heartbeatDue;
    private int _slotsChangedDue;

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
        _options = options;
        _frameworks = new Dictionary<string, IComputeFramework>(StringComparer.Ordinal);
        foreach (var framework in frameworks)
        {
            if (!_frameworks.TryAdd(framework.Name, framework))
            {
                throw new ArgumentException($"Two compute frameworks are named '{framework.Name}'; give each a distinct name.", nameof(frameworks));
            }
        }

        if (_frameworks.Count == 0)
        {
            throw new ArgumentException("An agent needs at least one compute framework, e.g. new ShellFramework().", nameof(frameworks));
        }

        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<AgentWorker>();
        _timeProvider = timeProvider ?? TimeProvider.System;
        _outbox = new Outbox(options.MaxBufferedReports);
        _heartbeatInterval = options.HeartbeatInterval;
    }

    /// <summary>Completes when the first Welcome has been received.</summary>
    public Task Connected => _connected.Task;

    /// <summary>True once draining: no new assignments are taken.</summary>
    public bool IsDraining => _draining;

    /// <summary>Attempts running now.</summary>
    public int RunningAttempts
    {
        get
        {
            lock (_attempts)
            {
                return _attempts.Values.Count(a => !a.Finished);
            }
        }
    }

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
                    LogReconnecting(_logger, args.AttemptNumber + 1, args.RetryDelay, args.Outcome.Exception?.Message ?? "stream ended");
                    return default;
                },
            })
            .Build();

        try
        {
            // Each pass is one outage: a session that got its Welcome and later broke starts a new pass, so backoff restarts from short delays.
            while (!IsFinished())
            {
                var finished = await pipeline.ExecuteAsync(SessionAsync, _hardStop.Token).ConfigureAwait(false);
                if (finished)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (_hardStop.IsCancellationRequested)
        {
            LogGaveUpFlushing(_logger, _outbox.Count);
        }
        finally
        {
            await _exited.CancelAsync().ConfigureAwait(false);
            await StopAllAttemptsAsync().ConfigureAwait(false);
            LogStopped(_logger, _options.AgentId);
        }
    }

    /// <summary>Stops taking new steps and exits once the running ones have finished and been reported.</summary>
    public void Drain(string reason) => BeginDrain(reason, local: false);

    private void BeginDrain(string reason, bool local)
    {
        if (local && !_localStop)
        {
            _localStop = true;
            _ = EnforceShutdownGraceAsync();
        }

        if (_draining)
        {
            _outbox.Wake();
            return;
        }

        _draining = true;
        Interlocked.Exchange(ref _slotsChangedDue, 1);
        LogDraining(_logger, reason, RunningAttempts);
        _outbox.Wake();
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

        List<AttemptState> running;
        lock (_attempts)
        {
            running = _attempts.Values.Where(a => !a.Finished).ToList();
        }

        foreach (var attempt in running)
        {
            attempt.StoppedByAgent = true;
            LogStoppingAttempt(_logger, attempt.RunId, attempt.StepId, attempt.Attempt, "shutdown grace period ended");
            await attempt.Stop.CancelAsync().ConfigureAwait(false);
        }

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

    private bool IsFinished()
    {
        if (!_draining)
        {
            return false;
        }

        lock (_attempts)
        {
            return _attempts.Count == 0 && _outbox.Count == 0;
        }
    }

    /// <summary>One connection. Throws when it fails before Welcome (retried with backoff); returns true when the agent is done.</summary>
    private async ValueTask<bool> SessionAsync(CancellationToken hardStop)
    {
        if (IsFinished())
        {
            return true;
        }

        using var channel = GrpcChannel.ForAddress(_options.SchedulerAddress, new GrpcChannelOptions
        {
            // Pings notice a scheduler whose host vanished without closing the connection, on an otherwise quiet stream.
            HttpHandler = new SocketsHttpHandler
            {
                KeepAlivePingDelay = TimeSpan.FromSeconds(10),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
                KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
                PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            },
            DisposeHttpClient = true,

            // Assignments carry inputs of up to 1 MiB from each upstream step.
            MaxReceiveMessageSize = 64 * 1024 * 1024,
        });
        using var sessionCts = CancellationTokenSource.CreateLinkedTokenSource(hardStop);
        using var call = new AgentService.AgentServiceClient(channel).Connect(cancellationToken: sessionCts.Token);
        LogConnecting(_logger, _options.SchedulerAddress, _options.AgentId);

        var hello = BuildHello();
        Welcome welcome;
        using (var welcomeCts = CancellationTokenSource.CreateLinkedTokenSource(sessionCts.Token))
        {
            // One deadline covers the TCP/HTTP2 connect, Hello and Welcome, so an unreachable scheduler cannot hang the agent.
            welcomeCts.CancelAfter(_options.ConnectTimeout);
            try
            {
                await call.RequestStream.WriteAsync(new ConnectRequest { Hello = hello }, welcomeCts.Token).ConfigureAwait(false);
                if (!await call.ResponseStream.MoveNext(welcomeCts.Token).ConfigureAwait(false))
                {
                    throw new IOException("the scheduler closed the stream before sending Welcome");
                }
            }
            catch (Exception ex) when (welcomeCts.IsCancellationRequested && !hardStop.IsCancellationRequested)
            {
                throw new TimeoutException($"no Welcome from {_options.SchedulerAddress} within {_options.ConnectTimeout}", ex);
            }

            welcome = call.ResponseStream.Current.Welcome
                ?? throw new InvalidOperationException($"the scheduler's first message was {call.ResponseStream.Current.MessageCase}, not Welcome");
        }

        ApplyWelcome(welcome);
        LogConnected(_logger, _options.SchedulerAddress, welcome.SchedulerId, _heartbeatInterval, hello.RunningAttempts.Count);
        _connected.TrySetResult();

        // From here a failure is a dropped stream, not a failed connect: the caller reconnects at once.
        var writer = WriteLoopAsync(call.RequestStream, sessionCts.Token);
        var reader = ReadLoopAsync(call.ResponseStream, sessionCts.Token);
        var heartbeat = HeartbeatLoopAsync(sessionCts.Token);
        var first = await Task.WhenAny(writer, reader).ConfigureAwait(false);
        if (first == writer && writer.IsCompletedSuccessfully)
        {
            // Half-closed after the last result: wait for the scheduler to end its side, so cancelling the call cannot cut off what was written.
            await Task.WhenAny(reader, Task.Delay(_options.ConnectTimeout, _timeProvider, hardStop)).ConfigureAwait(false);
        }

        await sessionCts.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(Quiet(writer), Quiet(reader), Quiet(heartbeat)).ConfigureAwait(false);
        hardStop.ThrowIfCancellationRequested();
        if (first == writer && writer.IsCompletedSuccessfully && writer.Result)
        {
            return true;
        }

        var why = first.Exception?.GetBaseException().Message ?? "the scheduler ended the stream";
        LogDisconnected(_logger, why, _outbox.Count);
        return false;
    }

    private Hello BuildHello()
    {
        var hello = new Hello
        {
            AgentId = _options.AgentId,
            Host = Environment.MachineName,
            Slots = _draining ? 0 : _options.Slots,
            Version = Version,
        };
        hello.Frameworks.AddRange(_frameworks.Keys.Order(StringComparer.Ordinal));
        hello.Handlers.AddRange(_frameworks.Values.SelectMany(f => f.Handlers).Distinct().Order(StringComparer.Ordinal));
        hello.Queues.AddRange(_options.Queues);
        hello.Labels.Add(_options.Labels);
        lock (_attempts)
        {
            // Attempts whose result still waits in the outbox are announced too: they are owned until the result lands.
            hello.RunningAttempts.AddRange(_attempts.Values.Where(a => !a.Revoked).Select(a => a.ToRunningAttempt()));
        }

        return hello;
    }

    private void ApplyWelcome(Welcome welcome)
    {
        if (welcome.HeartbeatInterval is { } interval && interval.ToTimeSpan() > TimeSpan.Zero)
        {
            _heartbeatInterval = interval.ToTimeSpan();
            if (_heartbeatTimer is { } timer)
            {
                timer.Period = _heartbeatInterval;
            }
        }

        foreach (var token in welcome.RevokedFencingTokens)
        {
            Revoke(token, "the scheduler revoked it on reconnect");
        }
    }

    private void Revoke(long token, string reason)
    {
        AttemptState? attempt;
        lock (_attempts)
        {
            if (!_attempts.TryGetValue(token, out attempt))
            {
                return;
            }

            attempt.Revoked = true;
            if (attempt.Finished)
            {
                _attempts.Remove(token);
            }
        }

        _outbox.RemoveAttempt(token);
        LogRevoked(_logger, attempt.RunId, attempt.StepId, attempt.Attempt, reason);
        attempt.Stop.Cancel();
        _outbox.Wake();
    }

    private async Task<bool> WriteLoopAsync(IClientStreamWriter<ConnectRequest> requests, CancellationToken cancellationToken)
    {
        while (true)
        {
            // Heartbeats and slot changes go before queued reports so a backlog of logs cannot starve them.
            if (Interlocked.Exchange(ref _slotsChangedDue, 0) == 1)
            {
                requests.WriteOptions = null;
                await requests.WriteAsync(new ConnectRequest { SlotsChanged = new SlotsChanged { Slots = _draining ? 0 : _options.Slots } }, cancellationToken).ConfigureAwait(false);
            }

            if (Interlocked.Exchange(ref _heartbeatDue, 0) == 1)
            {
                requests.WriteOptions = null;
                await requests.WriteAsync(new ConnectRequest { Heartbeat = BuildHeartbeat() }, cancellationToken).ConfigureAwait(false);
            }

            if (_outbox.Peek() is { } next)
            {
                // A backlog goes out with one flush: every report but the last of a burst is only buffered. If a
                // revocation empties the outbox in between, the buffered report leaves with the next heartbeat.
                requests.WriteOptions = _outbox.Count > next.Covered.Length ? Buffered : null;
                await requests.WriteAsync(next.Message, cancellationToken).ConfigureAwait(false);
                _outbox.Commit(next.Covered);
                if (next.Message.MessageCase is ConnectRequest.MessageOneofCase.StepCompleted or ConnectRequest.MessageOneofCase.StepFailed)
                {
                    ForgetReported(Outbox.TokenOf(next.Message));
                }

                continue;
            }

            if (IsFinished())
            {
                await requests.CompleteAsync().ConfigureAwait(false);
                return true;
            }

            await _outbox.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private Heartbeat BuildHeartbeat()
    {
        var heartbeat = new Heartbeat();
        lock (_attempts)
        {
            heartbeat.FencingTokens.AddRange(_attempts.Values.Where(a => !a.Revoked).Select(a => a.FencingToken));
        }

        return heartbeat;
    }

    private async Task HeartbeatLoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_heartbeatInterval, _timeProvider);
        _heartbeatTimer = timer;
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                Interlocked.Exchange(ref _heartbeatDue, 1);
                _outbox.Wake();
            }
        }
        finally
        {
            _heartbeatTimer = null;
        }
    }

    private async Task ReadLoopAsync(IAsyncStreamReader<ConnectResponse> responses, CancellationToken cancellationToken)
    {
        while (await responses.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            var message = responses.Current;
            LogReceived(_logger, message.MessageCase.ToString());
            switch (message.MessageCase)
            {
                case ConnectResponse.MessageOneofCase.Assignment:
                    Accept(message.Assignment);
                    break;
                case ConnectResponse.MessageOneofCase.CancelAttempt:
                    CancelAttempt(message.CancelAttempt);
                    break;
                case ConnectResponse.MessageOneofCase.Drain:
                    BeginDrain(string.IsNullOrEmpty(message.Drain.Reason) ? "the scheduler asked" : message.Drain.Reason, local: false);
                    break;
                case ConnectResponse.MessageOneofCase.ResultRejected:
                    LogRejected(_logger, message.ResultRejected.FencingToken, message.ResultRejected.Reason);
                    Revoke(message.ResultRejected.FencingToken, "the scheduler rejected its report: " + message.ResultRejected.Reason);
                    break;
                case ConnectResponse.MessageOneofCase.Welcome:
                    ApplyWelcome(message.Welcome);
                    break;
            }
        }
    }

    private void CancelAttempt(CancelAttempt cancel)
    {
        AttemptState? attempt;
        lock (_attempts)
        {
            if (!_attempts.TryGetValue(cancel.FencingToken, out attempt) || attempt.Finished)
            {
                return;
            }

            attempt.CancelledByScheduler = true;
        }

        LogStoppingAttempt(_logger, attempt.RunId, attempt.StepId, attempt.Attempt, string.IsNullOrEmpty(cancel.Reason) ? "cancelled by the scheduler" : cancel.Reason);
        attempt.Stop.Cancel();
    }

    private void Accept(Assignment assignment)
    {
        var slots = Math.Max(1, assignment.Spec?.Slots ?? 1);
        string? refusal = null;
        AttemptState? attempt = null;
        lock (_attempts)
        {
            if (_attempts.ContainsKey(assignment.FencingToken))
            {
                return;
            }

            if (assignment.Spec is null)
            {
                refusal = "assignment carries no step spec";
            }
            else if (!_frameworks.ContainsKey(assignment.Spec.Framework))
            {
                refusal = $"agent '{_options.AgentId}' has no compute framework '{assignment.Spec.Framework}' (it runs {string.Join(", ", _frameworks.Keys)})";
            }
            else if (_draining)
            {
                refusal = $"agent '{_options.AgentId}' is draining and takes no new steps";
            }
            else if (_usedSlots + slots > _options.Slots)
            {
                refusal = $"agent '{_options.AgentId}' has {_options.Slots - _usedSlots} free slots, the step needs {slots}";
            }
            else
            {
                attempt = new AttemptState(assignment, slots);
                _attempts.Add(attempt.FencingToken, attempt);
                _usedSlots += slots;
            }
        }

        if (attempt is null)
        {
            LogRefused(_logger, assignment.RunId, assignment.StepId, assignment.Attempt, refusal!);
            _outbox.Enqueue(new ConnectRequest { StepFailed = new StepFailed { FencingToken = assignment.FencingToken, Error = refusal } });
            return;
        }

        LogAssigned(_logger, attempt.RunId, attempt.StepId, attempt.Attempt, attempt.FencingToken, assignment.Spec!.Framework);
        _outbox.Enqueue(new ConnectRequest { StepStarted = new StepStarted { FencingToken = attempt.FencingToken } });
        attempt.Execution = Task.Run(() => RunAttemptAsync(attempt, assignment), CancellationToken.None);
    }

    private async Task RunAttemptAsync(AttemptState attempt, Assignment assignment)
    {
        var framework = _frameworks[assignment.Spec.Framework];
        var directory = Path.Combine(
            _options.EffectiveWorkRoot,
            AgentOptions.SanitizeAgentId(attempt.RunId),
            $"{AgentOptions.SanitizeAgentId(attempt.StepId)}.{attempt.Attempt}.{attempt.FencingToken}");
        StepResult result;
        try
        {
            // Left over from an earlier agent process with the same token: start clean. The directory itself is made by
            // the framework that uses it (the shell framework does; in-process handlers need none).
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }

            var inputs = assignment.Inputs.ToDictionary(
                i => i.StepId,
                i => new StepInputData(i.StepId, i.Data.Memory, string.IsNullOrEmpty(i.Uri) ? null : i.Uri, string.IsNullOrEmpty(i.Type) ? null : i.Type),
                StringComparer.Ordinal);
            // Not a ?: expression: there the null literal would convert to an empty ReadOnlyMemory (through byte[]) instead of "no checkpoint".
            ReadOnlyMemory<byte>? checkpoint = null;
            if (assignment.HasCheckpoint)
            {
                checkpoint = assignment.Checkpoint.Memory;
            }

            var execution = new StepExecution(attempt.RunId, attempt.StepId, attempt.Attempt, attempt.FencingToken, assignment.Spec, inputs, checkpoint, directory);
            result = await framework.RunAsync(execution, new AttemptReporter(_outbox, attempt), attempt.Stop.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            result = StepResult.Failure($"compute framework '{framework.Name}' failed: {ex.GetType().Name}: {ex.Message}");
        }

        if (!_options.KeepWorkDirectories)
        {
            TryDeleteDirectory(directory);
        }

        Finish(attempt, result);
    }

    private void Finish(AttemptState attempt, StepResult result)
    {
        ConnectRequest? report = null;
        if (result.Succeeded)
        {
            var completed = new StepCompleted { FencingToken = attempt.FencingToken, Output = ByteString.CopyFrom(result.Output.Span), OutputUri = result.OutputUri ?? string.Empty };
            completed.Usage.Add(result.Usage.ToDictionary());
            report = new ConnectRequest { StepCompleted = completed };
        }
        else
        {
            var error = result.Error ?? "step failed";
            if (attempt.StoppedByAgent && !attempt.CancelledByScheduler)
            {
                error = $"agent '{_options.AgentId}' stopped before the step finished ({error})";
            }

            var failed = new StepFailed
            {
                FencingToken = attempt.FencingToken,
                Error = error,
                Permanent = result.Permanent,
                TimedOut = result.TimedOut && !attempt.CancelledByScheduler,
                Cancelled = attempt.CancelledByScheduler || (result.Cancelled && !attempt.StoppedByAgent),
            };
            failed.Usage.Add(result.Usage.ToDictionary());
            report = new ConnectRequest { StepFailed = failed };
        }

        lock (_attempts)
        {
            attempt.Finished = true;
            _usedSlots -= attempt.Slots;
            if (attempt.Revoked)
            {
                _attempts.Remove(attempt.FencingToken);
                report = null;
            }
        }

        LogFinished(_logger, attempt.RunId, attempt.StepId, attempt.Attempt, result.Succeeded ? "succeeded" : "failed: " + result.Error);
        if (report is not null)
        {
            _outbox.Enqueue(report);
        }
        else
        {
            attempt.Dispose();
        }

        _outbox.Wake();
    }

    private void ForgetReported(long token)
    {
        lock (_attempts)
        {
            if (_attempts.Remove(token, out var attempt))
            {
                attempt.Dispose();
            }
        }
    }

    private async Task StopAllAttemptsAsync()
    {
        List<AttemptState> running;
        lock (_attempts)
        {
            running = _attempts.Values.Where(a => !a.Finished).ToList();
        }

        foreach (var attempt in running)
        {
            attempt.StoppedByAgent = true;
            await attempt.Stop.CancelAsync().ConfigureAwait(false);
        }

        // Return only once their processes are gone, so a stopped agent leaves nothing running behind it.
        await Task.WhenAll(running.Select(a => a.Execution ?? Task.CompletedTask)).ConfigureAwait(false);
    }

    private static void TryDeleteDirectory(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return;
        }

        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A step may leave files it cannot delete (or the directory is already gone); the work root is scratch space.
        }
    }

    private static async Task Quiet(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The session is over; its loops' errors were already surfaced through the first one that ended.
        }
    }
}
