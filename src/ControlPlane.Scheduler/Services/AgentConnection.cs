using System.Threading.Channels;
using ControlPlane.Scheduler.Security;
using ControlPlane.V1;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Services;

/// <summary>
/// One agent's Connect stream: reads its messages, claims work for its free slots, and writes every
/// outgoing message through one channel so the response stream has a single writer.
/// </summary>
internal sealed class AgentConnection : IDisposable
{
    /// <summary>The most reports one ReportBatch may carry; the Welcome of every stream says so.</summary>
    public const int MaxReportBatch = 256;

    /// <summary>The longest StepDeclined.reason accepted, in UTF-8 bytes.</summary>
    public const int MaxDeclineReasonBytes = 1024;

    /// <summary>The most bytes of messages written to the response stream without a flush.</summary>
    private const int MaxUnflushedBytes = 64 * 1024;

    private static readonly WriteOptions Buffered = new(WriteFlags.BufferHint);

    // Back-off between repeats of a claim whose outcome is unknown: doubling from 100 ms to at most 2 s.
    private static readonly TimeSpan ClaimRetryDelay = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxClaimRetryDelay = TimeSpan.FromSeconds(2);

    // Bounded (see OutgoingCapacity): a full channel means the agent is not reading, and the stream is closed.
    private readonly Channel<ConnectResponse> _outgoing;
    private readonly int _outgoingCapacity;

    // Cancels the write in progress once the agent is known not to read: only resetting the stream frees it.
    private readonly CancellationTokenSource _abortWrite = new();
    private readonly Lock _gate = new();

    // Fencing token -> attempt, for the attempts sent on this stream or re-announced in Hello: reports carry only the token.
    private readonly Dictionary<long, AttemptRef> _attempts = [];
    private readonly WakeUp _claimBell = new();
    private readonly CancellationTokenSource _stop;
    private readonly IRunStore _store;
    private readonly ReportPipeline _pipeline;
    private readonly SchedulerOptions _options;
    private readonly ILogger _logger;
    private readonly HashSet<string> _queues;
    private readonly AttemptSpans _spans;
    private AgentRegistration _registration;
    private volatile bool _draining;

    // Set when the agent declined an assignment (it has fewer free slots than this side counts, e.g. revoked attempts
    // still stopping): no claims until its next heartbeat, result or slot change, so the step does not bounce back.
    private volatile bool _declined;
    private bool _closedByShutdown;
    private int _overflowed;

    // Set once nothing more will be written to the stream (it ended, or a write failed).
    private volatile bool _ended;

    // The agent half-closed its side: no claims from here on.
    private volatile bool _agentFinished;

    // Reports of this stream posted to the pipeline and not yet committed.
    private int _uncommitted;

    // Attempts the agent started (StepStarted on this stream, or re-announced in Hello): never released on its behalf.
    private readonly HashSet<long> _started = [];

    // Fencing tokens already answered with ResultRejected on this stream.
    private readonly HashSet<long> _rejected = [];
    private const int MaxRejectedRemembered = 4096;

    /// <summary>How long the end of an agent's stream waits for its claims and reports to settle before releasing what it never took.</summary>
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Opens the secrets each claimed assignment names, just before it is sent; none attached when null.</summary>
    public SecretVault? Secrets { get; init; }

    public AgentConnection(
        AgentRegistration registration,
        string sessionId,
        IEnumerable<AttemptRef> keptAttempts,
        IRunStore store,
        ReportPipeline pipeline,
        SchedulerOptions options,
        ILogger logger,
        CancellationToken callCancelled)
    {
        _registration = registration with { SessionId = sessionId };
        _store = store;
        _pipeline = pipeline;
        _options = options;
        _logger = logger;
        _queues = new HashSet<string>(registration.Queues, StringComparer.Ordinal);
        _spans = new AttemptSpans(registration.AgentId);
        _stop = CancellationTokenSource.CreateLinkedTokenSource(callCancelled);
        _outgoingCapacity = OutgoingCapacity(registration.Slots, options.ReportBatch);
        _outgoing = Channel.CreateBounded<ConnectResponse>(new BoundedChannelOptions(_outgoingCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        foreach (var attempt in keptAttempts)
        {
            _attempts[attempt.FencingToken] = attempt;
            _started.Add(attempt.FencingToken);
        }
    }

    public string AgentId => _registration.AgentId;

    /// <summary>The agent session this stream opened; re-registrations keep it, and only its end disconnects the agent.</summary>
    public string SessionId => _registration.SessionId!;

    /// <summary>Why the stream is being closed from this side (replaced by a reconnect, or shutdown); null while open.</summary>
    public string? ClosedReason { get; private set; }

    public bool Serves(string queue) => _queues.Contains(queue);

    /// <summary>
    /// The most messages waiting to be written to an agent with <paramref name="slots"/> slots: an assignment and a
    /// CancelAttempt for every slot, the answers to two report batches (the larger of the agent's, <see cref="MaxReportBatch"/>,
    /// and the scheduler's commit batch, <paramref name="reportBatch"/>: one commit answers its reports at once), and a
    /// few single messages (Welcome, Drain). An agent that reads its stream never has that many waiting; one that does
    /// not read would otherwise make the scheduler keep every answer to its reports.
    /// </summary>
    public static int OutgoingCapacity(int slots, int reportBatch) =>
        (2 * Math.Max(slots, 0)) + (2 * Math.Max(MaxReportBatch, reportBatch)) + 8;

    /// <summary>
    /// Queues a message for the agent without waiting. When <see cref="OutgoingCapacity"/> messages already wait, the
    /// agent is not reading its stream and cannot be served: the stream is closed and the message dropped with it. Nothing
    /// is lost: the agent reconnects and re-announces its attempts, and resends the results nobody acknowledged; an
    /// assignment it never got waits out its lease.
    /// </summary>
    public void Send(ConnectResponse message)
    {
        if (!_outgoing.Writer.TryWrite(message))
        {
            OnOutgoingFull();
        }
    }

    public void RequestClaim() => _claimBell.Set();

    public void CancelAttempt(long token, string reason) =>
        Send(new ConnectResponse { CancelAttempt = new V1.CancelAttempt { FencingToken = token, Reason = reason } });

    public void Drain(string reason)
    {
        // Once is enough: the store's drain signal also arrives after a drained agent re-registers its slots.
        if (_draining)
        {
            return;
        }

        _draining = true;
        Send(new ConnectResponse { Drain = new V1.Drain { Reason = reason } });
    }

    /// <summary>Ends the stream from the scheduler's side; the agent sees UNAVAILABLE and reconnects.</summary>
    public void Close(string reason, bool shuttingDown = false)
    {
        _closedByShutdown |= shuttingDown && ClosedReason is null;
        ClosedReason ??= reason;
        try
        {
            _stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The stream already ended.
        }
    }

    private void OnOutgoingFull()
    {
        // TryWrite also fails once the stream has ended; only a full channel on a live stream is an agent not reading.
        if (_ended || Interlocked.Exchange(ref _overflowed, 1) == 1)
        {
            return;
        }

        SchedulerLog.AgentNotReading(_logger, AgentId, _outgoingCapacity);
        Close($"the agent is not reading its stream: {_outgoingCapacity} messages wait to be sent to it");

        // The write in progress waits for HTTP/2 flow control, which an agent that does not read never grants, and a
        // status would queue behind the data it does not read: only a reset ends the stream.
        try
        {
            _abortWrite.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The stream already ended.
        }
    }

    /// <summary>Serves the stream until the agent ends it, the call is cancelled or <see cref="Close"/> is called.</summary>
    public async Task RunAsync(IAsyncStreamReader<ConnectRequest> requests, IServerStreamWriter<ConnectResponse> responses)
    {
        var token = _stop.Token;
        var writer = WriteLoopAsync(responses, token);
        var claimer = ClaimLoopAsync(token);
        RequestClaim();
        try
        {
            while (await requests.MoveNext(token).ConfigureAwait(false))
            {
                await HandleAsync(requests.Current, token).ConfigureAwait(false);
            }

            await ReleaseUntakenAsync(claimer, token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ClosedReason is not null)
        {
            throw _closedByShutdown
                ? RpcErrors.ShuttingDown($"{ClosedReason}; reconnect", ("agent_id", AgentId))
                : new RpcException(new Status(StatusCode.Unavailable, $"{ClosedReason}; reconnect"));
        }
        finally
        {
            _ended = true;
            _outgoing.Writer.TryComplete();
            await _stop.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(Quietly(claimer), Quietly(writer)).ConfigureAwait(false);
            _spans.EndAll(ClosedReason ?? "the agent's stream ended before the attempt's result");
        }
    }

    /// <summary>
    /// The agent ended its side of the stream, which it does once drained, with nothing running and every result
    /// acknowledged. Assignments still held here were sent while it finished (a SIGTERM with assignments on the way):
    /// it never took them, and the declines it made could no longer be written. They are declined on its behalf, so
    /// their steps go back to READY at once without using an attempt instead of waiting out their leases.
    /// </summary>
    private async Task ReleaseUntakenAsync(Task claimer, CancellationToken token)
    {
        _agentFinished = true;
        RequestClaim();
        var settle = Task.Delay(SettleTimeout, token);
        await Task.WhenAny(claimer, settle).ConfigureAwait(false);
        await UntilCommittedAsync(settle).ConfigureAwait(false);

        List<long> untaken;
        lock (_gate)
        {
            untaken = [.. _attempts.Keys.Where(t => !_started.Contains(t))];
        }

        foreach (var fencingToken in untaken)
        {
            var decline = new ConnectRequest { StepDeclined = new StepDeclined { FencingToken = fencingToken, Reason = "it ended its stream before taking the assignment" } };
            await RouteAsync(fencingToken, decline, ReportEnd.Declined, token).ConfigureAwait(false);
        }

        if (untaken.Count > 0)
        {
            SchedulerLog.UntakenReleased(_logger, AgentId, untaken.Count);
            await UntilCommittedAsync(settle).ConfigureAwait(false);
        }
    }

    private async Task UntilCommittedAsync(Task giveUp)
    {
        while (Volatile.Read(ref _uncommitted) > 0 && !giveUp.IsCompleted)
        {
            await Task.WhenAny(Task.Delay(TimeSpan.FromMilliseconds(20)), giveUp).ConfigureAwait(false);
        }
    }

    private static async Task Quietly(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
#pragma warning disable CA1031 // The stream is over; a loop's last failure has nothing left to affect.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private async Task WriteLoopAsync(IServerStreamWriter<ConnectResponse> responses, CancellationToken token)
    {
        try
        {
            var unflushed = 0;
            while (await _outgoing.Reader.WaitToReadAsync(token).ConfigureAwait(false))
            {
                while (_outgoing.Reader.TryRead(out var message))
                {
                    // A burst (a claimed batch of assignments) goes out with few flushes: the last message flushes, and so
                    // does every MaxUnflushedBytes. Only a flush waits for HTTP/2 flow control, so without that cap an
                    // agent that does not read would have its messages moved from the bounded channel into an unbounded
                    // response buffer as fast as they came.
                    unflushed += message.CalculateSize();
                    var flush = unflushed >= MaxUnflushedBytes || !_outgoing.Reader.TryPeek(out _);
                    responses.WriteOptions = flush ? null : Buffered;
                    unflushed = flush ? 0 : unflushed;

                    // Not cancelled by the stop token: grpc-dotnet resets the stream when a write is cancelled, and the
                    // agent would then see CANCELLED instead of the status this stream ends with. Only an agent that does
                    // not read has its write cancelled (OnOutgoingFull).
                    await responses.WriteAsync(message, _abortWrite.Token).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The client is gone: stop reading too. Nothing more is written, so a full channel from now on says nothing.
            _ended = true;
            if (Volatile.Read(ref _overflowed) == 0)
            {
                SchedulerLog.AgentStreamFailed(_logger, AgentId, ex);
            }

            await _stop.CancelAsync().ConfigureAwait(false);
        }
    }

    private async Task ClaimLoopAsync(CancellationToken token)
    {
        while (!token.IsCancellationRequested)
        {
            // The periodic re-check covers wake-ups lost on the way (e.g. a pub/sub message dropped).
            await _claimBell.WaitAsync(_options.WatchRecheckInterval, token).ConfigureAwait(false);
            if (_agentFinished)
            {
                return;
            }

            if (_draining || _declined)
            {
                continue;
            }

            int free;
            lock (_gate)
            {
                free = _registration.Slots - _attempts.Count;
            }

            if (free <= 0)
            {
                continue;
            }

            var want = Math.Min(free, _options.ClaimBatch);
            var claimed = await ClaimAsync(
                new ClaimRequest(AgentId, want) { ClaimId = Guid.NewGuid().ToString("N"), SessionId = SessionId }, token).ConfigureAwait(false);
            if (claimed.Count == 0)
            {
                continue;
            }

            lock (_gate)
            {
                foreach (var assignment in claimed)
                {
                    _attempts[assignment.FencingToken] = new AttemptRef(assignment.RunId, assignment.StepId, assignment.FencingToken);
                }
            }

            await AttachSecretsAsync(claimed, token).ConfigureAwait(false);

            foreach (var assignment in claimed)
            {
                _spans.Start(assignment);
                Send(new ConnectResponse { Assignment = assignment });
            }

            SchedulerLog.Assigned(_logger, AgentId, claimed.Count);
            if (claimed.Count == want)
            {
                // A full batch: there may be more ready work for the remaining slots.
                RequestClaim();
            }
        }
    }

    /// <summary>
    /// One claim. When its outcome is unknown (the store was unreachable, possibly after it took the steps and before its
    /// reply arrived), the same claim id is repeated until the store answers: a repeat returns what the claim took, so
    /// those steps reach the agent now instead of waiting out their lease. Any other failure takes nothing.
    /// </summary>
    private async Task<IReadOnlyList<Assignment>> ClaimAsync(ClaimRequest request, CancellationToken token)
    {
        var delay = ClaimRetryDelay;
        while (true)
        {
            try
            {
                return await _store.ClaimAsync(request, token).ConfigureAwait(false);
            }
            catch (RunStoreException ex) when (ex.Error == RunStoreError.Unavailable)
            {
                SchedulerLog.ClaimFailed(_logger, AgentId, ex);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                SchedulerLog.ClaimFailed(_logger, AgentId, ex);
                return [];
            }

            // Real time, as the store's own reconnect back-off: the stream's end cancels the wait.
            await Task.Delay(delay, token).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxClaimRetryDelay.Ticks));
        }
    }

    /// <summary>
    /// Adds the secret values the assignments need, read after the claim (the claim scripts never hold the key). A store
    /// that cannot be read is retried as a claim is: sending the assignment without its secrets would fail the step.
    /// </summary>
    private async Task AttachSecretsAsync(IReadOnlyList<Assignment> claimed, CancellationToken token)
    {
        if (Secrets is null)
        {
            return;
        }

        var delay = ClaimRetryDelay;
        while (true)
        {
            try
            {
                await Secrets.AttachAsync(claimed, token).ConfigureAwait(false);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                SchedulerLog.ClaimFailed(_logger, AgentId, ex);
            }

            await Task.Delay(delay, token).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxClaimRetryDelay.Ticks));
        }
    }

    private async Task HandleAsync(ConnectRequest message, CancellationToken token)
    {
        switch (message.MessageCase)
        {
            case ConnectRequest.MessageOneofCase.Hello:
                throw RpcErrors.InvalidArgument("hello", "hello may only be the first message of a Connect stream; open a new stream to announce the agent again");

            case ConnectRequest.MessageOneofCase.Heartbeat:
                ResumeClaims();
                await HeartbeatAsync(message.Heartbeat, token).ConfigureAwait(false);
                break;

            case ConnectRequest.MessageOneofCase.SlotsChanged:
                _declined = false;
                await SlotsChangedAsync(message.SlotsChanged.Slots, token).ConfigureAwait(false);
                break;

            case ConnectRequest.MessageOneofCase.ReportBatch:
                await RouteBatchAsync(message.ReportBatch, token).ConfigureAwait(false);
                break;

            default:
                CheckReport(message, "step_declined");
                await RouteReportAsync(message, token).ConfigureAwait(false);
                break;
        }
    }

    private void ResumeClaims()
    {
        if (_declined)
        {
            _declined = false;
            RequestClaim();
        }
    }

    /// <summary>Limits of a report's own fields, checked before it is routed.</summary>
    private static void CheckReport(ConnectRequest report, string path)
    {
        if (report.StepDeclined is { } declined && System.Text.Encoding.UTF8.GetByteCount(declined.Reason) > MaxDeclineReasonBytes)
        {
            throw RpcErrors.InvalidArgument($"{path}.reason", $"{path}.reason is {System.Text.Encoding.UTF8.GetByteCount(declined.Reason)} bytes; send at most {MaxDeclineReasonBytes}");
        }
    }

    private async Task RouteBatchAsync(ReportBatch batch, CancellationToken token)
    {
        // Checked whole before any report is routed, so a malformed batch records nothing.
        if (batch.Reports.Count > MaxReportBatch)
        {
            throw RpcErrors.InvalidArgument("report_batch.reports", $"report_batch carries {batch.Reports.Count} reports; send at most {MaxReportBatch} (Welcome.max_report_batch) per batch");
        }

        for (var i = 0; i < batch.Reports.Count; i++)
        {
            var kind = batch.Reports[i].MessageCase;
            if (kind is ConnectRequest.MessageOneofCase.Hello or ConnectRequest.MessageOneofCase.Heartbeat
                or ConnectRequest.MessageOneofCase.SlotsChanged or ConnectRequest.MessageOneofCase.ReportBatch)
            {
                var name = ConnectRequest.Descriptor.FindFieldByNumber((int)kind).Name;
                throw RpcErrors.InvalidArgument($"report_batch.reports[{i}]", $"report_batch.reports[{i}] is {name}; a batch carries step reports only, send {name} as a message of its own");
            }

            CheckReport(batch.Reports[i], $"report_batch.reports[{i}].step_declined");
        }

        foreach (var report in batch.Reports)
        {
            await RouteReportAsync(report, token).ConfigureAwait(false);
        }
    }

    private ValueTask RouteReportAsync(ConnectRequest message, CancellationToken token) => message.MessageCase switch
    {
        ConnectRequest.MessageOneofCase.StepStarted => RouteAsync(message.StepStarted.FencingToken, message, ReportEnd.None, token),
        ConnectRequest.MessageOneofCase.StepProgress => RouteAsync(message.StepProgress.FencingToken, message, ReportEnd.None, token),
        ConnectRequest.MessageOneofCase.StepCheckpoint => RouteAsync(message.StepCheckpoint.FencingToken, message, ReportEnd.None, token),
        ConnectRequest.MessageOneofCase.StepLog => RouteAsync(message.StepLog.FencingToken, message, ReportEnd.None, token),
        ConnectRequest.MessageOneofCase.StepCompleted => RouteAsync(message.StepCompleted.FencingToken, message, ReportEnd.Result, token),
        ConnectRequest.MessageOneofCase.StepFailed => RouteAsync(message.StepFailed.FencingToken, message, ReportEnd.Result, token),
        ConnectRequest.MessageOneofCase.StepDeclined => RouteAsync(message.StepDeclined.FencingToken, message, ReportEnd.Declined, token),

        // An empty envelope or a message kind newer than this scheduler: nothing to do.
        _ => ValueTask.CompletedTask,
    };

    private async ValueTask RouteAsync(long fencingToken, ConnectRequest message, ReportEnd end, CancellationToken token)
    {
        AttemptRef attempt;
        lock (_gate)
        {
            if (!_attempts.TryGetValue(fencingToken, out attempt))
            {
                Reject(fencingToken, $"fencing token {fencingToken} is not an attempt assigned on this stream or re-announced in Hello: it belongs to another agent session, or to none");
                return;
            }
        }

        if (end == ReportEnd.Result)
        {
            ResumeClaims();
        }

        if (message.MessageCase == ConnectRequest.MessageOneofCase.StepStarted)
        {
            lock (_gate)
            {
                _started.Add(fencingToken);
            }
        }

        // Waits while the pipeline is full (the store is slow or unreachable): this stream is not read meanwhile.
        // A closed pipeline (shutdown) records nothing and refuses nothing: the agent keeps its unacknowledged
        // results and sends them again to the replica it reconnects to.
        Interlocked.Increment(ref _uncommitted);
        var posted = false;
        try
        {
            // The store checks that this agent and session still hold the attempt: a token alone proves nothing, and a
            // reconnect on another replica may have taken the attempt over since it was routed here.
            posted = await _pipeline.PostAsync(
                new AttemptReport(attempt, Internal.ReportLimits.Normalize(message)) { AgentId = AgentId, SessionId = SessionId },
                result =>
                {
                    Interlocked.Decrement(ref _uncommitted);
                    OnCommitted(fencingToken, end, result, message);
                },
                token).ConfigureAwait(false);
        }
        finally
        {
            if (!posted)
            {
                Interlocked.Decrement(ref _uncommitted);
            }
        }
    }

    private void OnCommitted(long fencingToken, ReportEnd end, CommitResult result, ConnectRequest report)
    {
        var refused = result.Outcome switch
        {
            ReportOutcome.Accepted or ReportOutcome.AlreadyApplied => null,
            ReportOutcome.StaleToken => $"fencing token {fencingToken} is stale: the attempt lost its lease or ended, and the step belongs to a newer attempt or is finished",
            ReportOutcome.UnknownAttempt => $"fencing token {fencingToken} names a run or step that no longer exists",
            ReportOutcome.NotOwner => $"fencing token {fencingToken} names an attempt that belongs to another agent session: another agent holds it, or this agent reconnected and its newer stream took it over",
            _ => result.Error,
        };
        if (refused is not null)
        {
            Reject(fencingToken, refused);
        }
        else if (end != ReportEnd.None && result.Outcome is not null)
        {
            // Only now, with the store call returned, may the agent forget the result.
            Send(new ConnectResponse { ResultsAccepted = new ResultsAccepted { FencingTokens = { fencingToken } } });
        }

        if (end != ReportEnd.None || result.Outcome is ReportOutcome.StaleToken or ReportOutcome.UnknownAttempt or ReportOutcome.NotOwner)
        {
            lock (_gate)
            {
                _attempts.Remove(fencingToken);
                _started.Remove(fencingToken);
            }

            _spans.End(fencingToken, report, result.Outcome, refused);
            if (end == ReportEnd.Declined && result.Outcome is ReportOutcome.Accepted or ReportOutcome.AlreadyApplied)
            {
                // The agent has fewer free slots than counted here: asking it again at once would only be declined again.
                _declined = true;
            }
            else
            {
                // A slot is free again.
                RequestClaim();
            }
        }
    }

    /// <summary>Whether a report ends its attempt on this stream.</summary>
    private enum ReportEnd
    {
        None,
        Result,
        Declined,
    }

    private void Reject(long fencingToken, string reason)
    {
        // One refusal per attempt is enough (the agent drops everything queued for it), and a batch of reports for one
        // stale attempt must not fill the outgoing queue with refusals.
        lock (_gate)
        {
            if (_rejected.Count >= MaxRejectedRemembered)
            {
                _rejected.Clear();
            }

            if (!_rejected.Add(fencingToken))
            {
                return;
            }
        }

        SchedulerLog.ReportRefused(_logger, fencingToken, AgentId, reason);
        Send(new ConnectResponse { ResultRejected = new ResultRejected { FencingToken = fencingToken, Reason = reason } });
    }

    private async Task HeartbeatAsync(Heartbeat heartbeat, CancellationToken token)
    {
        var known = new List<AttemptRef>(heartbeat.FencingTokens.Count);
        var unknown = new List<long>();
        lock (_gate)
        {
            foreach (var fencingToken in heartbeat.FencingTokens)
            {
                if (_attempts.TryGetValue(fencingToken, out var attempt))
                {
                    known.Add(attempt);
                }
                else
                {
                    unknown.Add(fencingToken);
                }
            }
        }

        foreach (var fencingToken in unknown)
        {
            CancelAttempt(fencingToken, "the scheduler does not know this attempt on this stream; stop it");
        }

        try
        {
            var stopThese = await _store.RenewLeasesAsync(AgentId, known, SessionId, token).ConfigureAwait(false);
            foreach (var fencingToken in stopThese)
            {
                CancelAttempt(fencingToken, "the attempt was cancelled, lost its lease, or belongs to another agent session");
            }

            // Only a renewal the store made is acknowledged: the agent counts its leases from the heartbeats accepted.
            if (heartbeat.Sequence > 0)
            {
                Send(new ConnectResponse { HeartbeatAccepted = new HeartbeatAccepted { Sequence = heartbeat.Sequence } });
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A missed renewal is survivable: the lease is several heartbeats long.
            SchedulerLog.RenewFailed(_logger, AgentId, ex);
        }
    }

    private async Task SlotsChangedAsync(int slots, CancellationToken token)
    {
        if (slots < 0)
        {
            throw RpcErrors.InvalidArgument("slots_changed.slots", $"slots_changed.slots is {slots}; send 0 or more");
        }

        AgentRegistration updated;
        lock (_gate)
        {
            updated = _registration with { Slots = slots, RunningAttempts = [.. _attempts.Values] };
        }

        // Re-registering is how the store learns the new slot count; the attempts listed keep their leases.
        var session = await RpcErrors.Guard(() => _store.ConnectAgentAsync(updated, token), ("agent_id", AgentId)).ConfigureAwait(false);
        if (_draining)
        {
            // Re-registering marks the agent connected again; a drained agent must stay draining.
            await RpcErrors.Guard(() => _store.DrainAgentAsync(AgentId, token), ("agent_id", AgentId)).ConfigureAwait(false);
        }

        lock (_gate)
        {
            _registration = updated;
            foreach (var revoked in session.RevokedTokens)
            {
                _attempts.Remove(revoked);
                _started.Remove(revoked);
            }
        }

        foreach (var revoked in session.RevokedTokens)
        {
            _spans.End(revoked, "lease_lost", "the attempt is no longer owned by this agent");
            CancelAttempt(revoked, "the attempt is no longer owned by this agent");
        }

        RequestClaim();
    }

    public void Dispose()
    {
        _stop.Dispose();
        _abortWrite.Dispose();
        _claimBell.Dispose();
    }
}
