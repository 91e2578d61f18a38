using System.Reflection;
using System.Security.Cryptography.X509Certificates;
using ControlPlane.Internal;
using ControlPlane.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Agent.Internal;

/// <summary>
/// The agent's side of AgentService.Connect. Each <see cref="RunAsync"/> is one connection: Hello and Welcome,
/// then a read loop (assignments, cancels, drain), a write loop (heartbeats and slot changes first, then the
/// outbox) and a heartbeat timer. What must survive a reconnect (due heartbeats, the interval) lives here.
/// </summary>
internal sealed class SchedulerSession
{
    private static readonly string Version =
        typeof(SchedulerSession).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    // Bounds of one ReportBatch: a backlog of small reports leaves in one write, a burst of large checkpoints or outputs in several.
    private const int MaxReportsPerBatch = 256;
    private const int MaxBatchBytes = 1024 * 1024;

    // The most attempts one Hello may re-announce (the scheduler's cap, and the most slots an agent may have).
    private const int MaxAnnouncedAttempts = 10_000;

    // Heartbeats remembered while waiting for HeartbeatAccepted.
    private const int MaxUnacceptedHeartbeats = 64;

    private readonly AgentOptions _options;
    private readonly IReadOnlyCollection<IComputeFramework> _frameworks;
    private readonly AttemptTable _attempts;
    private readonly AttemptRunner _runner;
    private readonly Outbox _outbox;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TimeSpan _heartbeatInterval;
    private PeriodicTimer? _heartbeatTimer;
    private int _heartbeatDue;
    private int _slotsChangedDue;
    private int _maxReportBatch = 1;

    // Each connection goes to the next scheduler address in turn, so a dead replica costs one failed connect, not every one.
    private int _nextAddress;

    // What the scheduler of the current stream said in Welcome: it acknowledges stored results; it understands StepDeclined.
    private volatile bool _acknowledgesResults;
    private volatile bool _acceptsDeclines;
    private volatile bool _acknowledgesHeartbeats;

    // Heartbeats of the current stream written but not yet accepted: sequence and when it was written. Only an accepted
    // one renews leases (from when it was written), so a scheduler that stopped answering cannot keep steps alive.
    private readonly Queue<(long Sequence, long WrittenAt)> _unacceptedHeartbeats = new();
    private long _heartbeatSequence;

    // When the scheduler of this stream last showed it serves it: its Welcome, then each HeartbeatAccepted.
    private long _lastAcceptedAt;

    public SchedulerSession(
        AgentOptions options,
        IReadOnlyCollection<IComputeFramework> frameworks,
        AttemptTable attempts,
        AttemptRunner runner,
        Outbox outbox,
        ILogger logger,
        TimeProvider timeProvider)
    {
        _options = options;
        _frameworks = frameworks;
        _attempts = attempts;
        _runner = runner;
        _outbox = outbox;
        _logger = logger;
        _timeProvider = timeProvider;
        _heartbeatInterval = options.HeartbeatInterval;
        _tls = options.LoadTls();
    }

    // The private CA and client certificate of every connection, loaded once (the options were validated at start).
    private readonly (X509Certificate2Collection? Ca, X509Certificate2? Certificate) _tls;

    /// <summary>Completes when the first Welcome has been received.</summary>
    public Task Connected => _connected.Task;

    /// <summary>Draining, nothing held and nothing left to write: the agent is done.</summary>
    public bool IsFinished => _attempts.IsDraining && _attempts.IsEmpty && _outbox.Count == 0;

    /// <summary>Stops taking new steps and tells the scheduler (SlotsChanged to 0); the session ends once everything is reported.</summary>
    public void Drain(string reason)
    {
        if (_attempts.BeginDrain())
        {
            Interlocked.Exchange(ref _slotsChangedDue, 1);
            AgentLog.Draining(_logger, reason, _attempts.Running);
        }

        _outbox.Wake();
    }

    /// <summary>One connection. Throws when it fails before Welcome (retried with backoff); returns true when the agent is done.</summary>
    public async ValueTask<bool> RunAsync(CancellationToken hardStop)
    {
        if (IsFinished)
        {
            return true;
        }

        var addresses = _options.SchedulerAddresses;
        var address = addresses[(int)((uint)_nextAddress++ % (uint)addresses.Count)];
        var handler = new SocketsHttpHandler
        {
            // Pings notice a scheduler whose host vanished without closing the connection, on an otherwise quiet stream.
            KeepAlivePingDelay = TimeSpan.FromSeconds(10),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        };
        ClientTls.Apply(handler.SslOptions, _tls.Ca, _tls.Certificate);
        using var channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,

            // Assignments carry inputs of up to 1 MiB from each upstream step.
            MaxReceiveMessageSize = 64 * 1024 * 1024,
        });
        using var sessionCts = CancellationTokenSource.CreateLinkedTokenSource(hardStop);
        // The token is read on every connect, so a rotated token file takes effect at the next reconnect.
        var token = _options.ReadToken();
        Metadata? headers = null;
        if (token is not null)
        {
            headers = new Metadata { { "authorization", "Bearer " + token } };
        }

        // The scheduler assigns this agent steps of its call's namespace only.
        if (_options.Namespace is { } ns)
        {
            headers ??= new Metadata();
            headers.Add("cp-namespace", ns);
        }
        using var call = new AgentService.AgentServiceClient(channel).Connect(headers, cancellationToken: sessionCts.Token);
        AgentLog.Connecting(_logger, address, _options.AgentId);

        var hello = BuildHello();
        lock (_unacceptedHeartbeats)
        {
            _unacceptedHeartbeats.Clear();
        }

        // The store renews the re-announced attempts' leases after this moment, while it answers the Hello.
        var helloAt = _timeProvider.GetTimestamp();
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
                throw new TimeoutException($"no Welcome from {address} within {_options.ConnectTimeout}", ex);
            }
            catch (RpcException ex) when (ex.Status.DebugException is HttpRequestException && !hardStop.IsCancellationRequested)
            {
                // The connection itself failed: say so in TLS terms when TLS is why (the reconnect log line carries it).
                var hint = await ClientTls.DiagnoseAsync(new Uri(address), _tls.Ca, _tls.Certificate, hardStop).ConfigureAwait(false);
                if (hint is null)
                {
                    throw;
                }

                throw new IOException(hint, ex);
            }

            welcome = call.ResponseStream.Current.Welcome
                ?? throw new InvalidOperationException($"the scheduler's first message was {call.ResponseStream.Current.MessageCase}, not Welcome");
        }

        Interlocked.Exchange(ref _lastAcceptedAt, _timeProvider.GetTimestamp());
        ApplyWelcome(welcome, helloAt);

        // Results the previous stream took but no scheduler acknowledged go first; those it revoked are gone already.
        var resent = _outbox.ResendUnacknowledged();
        AgentLog.Connected(_logger, address, welcome.SchedulerId, _heartbeatInterval, hello.RunningAttempts.Count, resent);
        _connected.TrySetResult();

        // From here a failure is a dropped stream, not a failed connect: the caller reconnects at once.
        var writer = WriteLoopAsync(call.RequestStream, sessionCts.Token);
        var reader = ReadLoopAsync(call.ResponseStream, sessionCts.Token);
        var heartbeat = HeartbeatLoopAsync(sessionCts.Token);
        var first = await Task.WhenAny(writer, reader, heartbeat).ConfigureAwait(false);
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
        AgentLog.Disconnected(_logger, why, _outbox.Count);
        return false;
    }

    private Hello BuildHello()
    {
        var hello = new Hello
        {
            AgentId = _options.AgentId,
            Host = Environment.MachineName,
            Slots = _attempts.IsDraining ? 0 : _options.Slots,
            Version = Version,
        };
        hello.Frameworks.AddRange(_frameworks.Select(f => f.Name).Order(StringComparer.Ordinal));

        // Read at each connect: a dotnet framework may register handlers after the agent was created.
        hello.Handlers.AddRange(_frameworks.SelectMany(f => f.Handlers).Distinct().Order(StringComparer.Ordinal));
        hello.Queues.AddRange(_options.Queues);
        hello.Labels.Add(_options.Labels);
        hello.RunningAttempts.AddRange(_attempts.Owned());

        // A refusal the last stream took but did not acknowledge is sent again; its attempt must be known to the new one.
        // Within the most attempts a Hello may name; a refusal left out waits out its lease instead.
        hello.RunningAttempts.AddRange(_runner.Refused().Take(Math.Max(0, MaxAnnouncedAttempts - hello.RunningAttempts.Count)));
        return hello;
    }

    /// <summary>Takes what a Welcome says; <paramref name="helloAt"/>: when the Hello it answers was written, null for a later Welcome on the same stream.</summary>
    private void ApplyWelcome(Welcome welcome, long? helloAt)
    {
        // 0 from a scheduler that predates ReportBatch: it would ignore a batch, so reports go one by one.
        _maxReportBatch = Math.Clamp(welcome.MaxReportBatch, 1, MaxReportsPerBatch);
        _acknowledgesResults = welcome.AcknowledgesResults;
        _acceptsDeclines = welcome.AcceptsDeclines;
        _acknowledgesHeartbeats = welcome.AcknowledgesHeartbeats;
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
            _runner.Revoke(token, "the scheduler revoked it on reconnect");
        }

        if (helloAt is { } renewedAfter)
        {
            _runner.RenewLeases(welcome.LeaseDuration?.ToTimeSpan(), renewedAfter);
        }
    }

    private async Task<bool> WriteLoopAsync(IClientStreamWriter<ConnectRequest> requests, CancellationToken cancellationToken)
    {
        while (true)
        {
            // Heartbeats and slot changes go before queued reports so a backlog of logs cannot starve them.
            if (Interlocked.Exchange(ref _slotsChangedDue, 0) == 1)
            {
                await requests.WriteAsync(new ConnectRequest { SlotsChanged = new SlotsChanged { Slots = _attempts.IsDraining ? 0 : _options.Slots } }, cancellationToken).ConfigureAwait(false);
            }

            if (Interlocked.Exchange(ref _heartbeatDue, 0) == 1)
            {
                await WriteHeartbeatAsync(requests, cancellationToken).ConfigureAwait(false);
            }

            // Grpc.Net.Client flushes every write (it ignores WriteFlags.BufferHint), so a backlog leaves as one ReportBatch.
            if (_outbox.Peek(_maxReportBatch, MaxBatchBytes) is { } next)
            {
                var acknowledged = _acknowledgesResults;
                await requests.WriteAsync(_acceptsDeclines ? next.Message : WithoutDeclines(next.Message), cancellationToken).ConfigureAwait(false);

                // A scheduler that acknowledges results: each is kept (and its attempt held) until ResultsAccepted says it is stored.
                _outbox.Commit(next.Covered, keepResults: acknowledged);
                if (acknowledged)
                {
                    continue;
                }

                if (next.Message.ReportBatch is { } batch)
                {
                    foreach (var report in batch.Reports)
                    {
                        ForgetIfResult(report);
                    }
                }
                else
                {
                    ForgetIfResult(next.Message);
                }

                continue;
            }

            if (IsFinished)
            {
                await requests.CompleteAsync().ConfigureAwait(false);
                return true;
            }

            await _outbox.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task WriteHeartbeatAsync(IClientStreamWriter<ConnectRequest> requests, CancellationToken cancellationToken)
    {
        var heartbeat = new Heartbeat { FencingTokens = { _attempts.OwnedTokens() } };
        var writtenAt = _timeProvider.GetTimestamp();
        if (!_acknowledgesHeartbeats)
        {
            // A scheduler that predates HeartbeatAccepted: the heartbeat counts once written.
            await requests.WriteAsync(new ConnectRequest { Heartbeat = heartbeat }, cancellationToken).ConfigureAwait(false);
            _runner.RenewLeases(null, writtenAt);
            return;
        }

        heartbeat.Sequence = Interlocked.Increment(ref _heartbeatSequence);
        lock (_unacceptedHeartbeats)
        {
            // A scheduler that stopped answering leaves these unaccepted; only the newest ones can still matter.
            while (_unacceptedHeartbeats.Count >= MaxUnacceptedHeartbeats)
            {
                _unacceptedHeartbeats.Dequeue();
            }

            _unacceptedHeartbeats.Enqueue((heartbeat.Sequence, writtenAt));
        }

        await requests.WriteAsync(new ConnectRequest { Heartbeat = heartbeat }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A scheduler that acknowledges heartbeats and has accepted none for two intervals is not serving this stream
    /// (a frozen replica, a stalled connection the keep-alive has not noticed yet, a store it cannot reach): the
    /// session ends and the agent reconnects to the next address while its attempts' leases still run, so another
    /// replica can renew them. Counted from the last acceptance, not from a heartbeat written: a stream too stalled
    /// to take the next heartbeat (its writes held by flow control) is silent too.
    /// </summary>
    private void ThrowIfSchedulerSilent()
    {
        if (!_acknowledgesHeartbeats)
        {
            return;
        }

        var silent = _timeProvider.GetElapsedTime(Interlocked.Read(ref _lastAcceptedAt));
        if (silent >= 2 * _heartbeatInterval)
        {
            throw new TimeoutException($"the scheduler accepted no heartbeat for {silent.TotalSeconds:0.#} s (interval {_heartbeatInterval.TotalSeconds:0.#} s); reconnecting");
        }
    }

    private void OnHeartbeatAccepted(long sequence)
    {
        long? writtenAt = null;
        lock (_unacceptedHeartbeats)
        {
            // Accepted in order: earlier ones still waiting were not renewed and never will be.
            while (_unacceptedHeartbeats.TryPeek(out var oldest) && oldest.Sequence <= sequence)
            {
                _unacceptedHeartbeats.Dequeue();
                if (oldest.Sequence == sequence)
                {
                    writtenAt = oldest.WrittenAt;
                }
            }
        }

        if (writtenAt is { } renewedAfter)
        {
            Interlocked.Exchange(ref _lastAcceptedAt, _timeProvider.GetTimestamp());
            _runner.RenewLeases(null, renewedAfter);
        }
    }

    /// <summary>For a scheduler that predates StepDeclined: a decline becomes a retryable failure carrying its reason.</summary>
    private static ConnectRequest WithoutDeclines(ConnectRequest message)
    {
        static ConnectRequest Downgrade(ConnectRequest report) => report.StepDeclined is { } declined
            ? new ConnectRequest { StepFailed = new StepFailed { FencingToken = declined.FencingToken, Error = declined.Reason } }
            : report;

        if (message.ReportBatch is { } batch && batch.Reports.Any(r => r.StepDeclined is not null))
        {
            return new ConnectRequest { ReportBatch = new ReportBatch { Reports = { batch.Reports.Select(Downgrade) } } };
        }

        return Downgrade(message);
    }

    private void ForgetIfResult(ConnectRequest report)
    {
        if (report.MessageCase is ConnectRequest.MessageOneofCase.StepCompleted or ConnectRequest.MessageOneofCase.StepFailed or ConnectRequest.MessageOneofCase.StepDeclined)
        {
            _attempts.Forget(Outbox.TokenOf(report));
            _runner.ForgetRefusal(Outbox.TokenOf(report));
        }
    }

    private async Task HeartbeatLoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_heartbeatInterval, _timeProvider);
        _heartbeatTimer = timer;
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                ThrowIfSchedulerSilent();
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
            AgentLog.Received(_logger, message.MessageCase);
            switch (message.MessageCase)
            {
                case ConnectResponse.MessageOneofCase.Assignment:
                    _runner.Accept(message.Assignment);
                    break;
                case ConnectResponse.MessageOneofCase.CancelAttempt:
                    _runner.Cancel(message.CancelAttempt);
                    break;
                case ConnectResponse.MessageOneofCase.Drain:
                    Drain(string.IsNullOrEmpty(message.Drain.Reason) ? "the scheduler asked" : message.Drain.Reason);
                    break;
                case ConnectResponse.MessageOneofCase.ResultRejected:
                    AgentLog.Rejected(_logger, message.ResultRejected.FencingToken, message.ResultRejected.Reason);
                    _outbox.RemoveAttempt(message.ResultRejected.FencingToken);
                    _runner.ForgetRefusal(message.ResultRejected.FencingToken);
                    _runner.Revoke(message.ResultRejected.FencingToken, "the scheduler rejected its report: " + message.ResultRejected.Reason);
                    _outbox.Wake();
                    break;
                case ConnectResponse.MessageOneofCase.ResultsAccepted:
                    foreach (var token in message.ResultsAccepted.FencingTokens)
                    {
                        // Stored: the attempt is done here, and its slot was freed when its step ended.
                        _outbox.Acknowledge(token);
                        _attempts.Forget(token);
                        _runner.ForgetRefusal(token);
                    }

                    _outbox.Wake();
                    break;
                case ConnectResponse.MessageOneofCase.HeartbeatAccepted:
                    OnHeartbeatAccepted(message.HeartbeatAccepted.Sequence);
                    break;
                case ConnectResponse.MessageOneofCase.Welcome:
                    ApplyWelcome(message.Welcome, null);
                    break;
            }
        }
    }

    private static async Task Quiet(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
#pragma warning disable CA1031 // The session is over; its loops' errors were already surfaced through the first one that ended.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }
}
