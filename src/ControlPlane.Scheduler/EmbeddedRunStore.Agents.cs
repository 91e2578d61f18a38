using ControlPlane.Scheduler.Internal;
using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Scheduler;

// Agents, claims, attempt reports, leases and the reaper.
public sealed partial class EmbeddedRunStore
{
    public Task<AgentSession> ConnectAgentAsync(AgentRegistration registration, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(registration);
        if (!RunSpecValidator.IsValidName(registration.AgentId))
        {
            throw RunStoreException.Invalid("agent_id", $"agent_id '{registration.AgentId}' must match [a-z0-9][a-z0-9._-]{{0,62}}");
        }

        if (registration.Slots is < 0 or > AgentRegistration.MaxSlots)
        {
            throw RunStoreException.Invalid("slots", $"slots is {registration.Slots}; an agent has 0 to {AgentRegistration.MaxSlots} slots");
        }

        if (registration.RunningAttempts.Count > AgentRegistration.MaxSlots)
        {
            throw RunStoreException.Invalid("running_attempts",
                $"running_attempts lists {registration.RunningAttempts.Count} attempts; an agent runs at most {AgentRegistration.MaxSlots} at once");
        }

        return Task.FromResult(Mutate(() =>
        {
            var now = Now;
            if (registration.SessionId is { } named && _agents.TryGetValue(registration.AgentId, out var known) && known.SessionId.Length > 0 && known.SessionId != named)
            {
                // The agent opened a newer session since (it reconnected): the old stream must not take its state back.
                throw new RunStoreException(RunStoreError.FailedPrecondition, ErrorReason.AgentNotConnected,
                    $"agent '{registration.AgentId}' opened a newer session since; session {named} is superseded: reconnect");
            }

            if (!_agents.TryGetValue(registration.AgentId, out var agent))
            {
                agent = new EmbeddedAgent(new Agent { AgentId = registration.AgentId }, registration);
                _agents[registration.AgentId] = agent;
            }

            agent.Registration = registration;
            agent.SessionId = registration.SessionId ?? Guid.NewGuid().ToString("N");
            var a = agent.Agent;
            a.Host = registration.Host;
            a.Frameworks.Clear();
            a.Frameworks.Add(registration.Frameworks);
            a.Queues.Clear();
            a.Queues.Add(agent.Queues);
            a.Labels.Clear();
            foreach (var (k, v) in registration.Labels)
            {
                a.Labels[k] = v;
            }
            a.Handlers.Clear();
            a.Handlers.Add(registration.Handlers);
            a.Slots = registration.Slots;
            a.State = AgentState.Connected;
            a.ConnectedAt = Timestamp.FromDateTimeOffset(now);
            a.LastHeartbeatAt = a.ConnectedAt;

            var revoked = new List<long>();
            foreach (var attempt in registration.RunningAttempts)
            {
                if (_activeByToken.TryGetValue(attempt.FencingToken, out var step)
                    && step.Step.AgentId == registration.AgentId
                    && step.Owner.Run.Id == attempt.RunId
                    && step.Spec.Id == attempt.StepId
                    && !step.CancelRequested)
                {
                    // Re-announced by the agent that holds it: this session takes it over, and an older stream of the
                    // agent that is still open (on another replica) may no longer report on it.
                    step.LeaseExpiresAt = now + _options.LeaseDuration;
                    step.Session = agent.SessionId;
                }
                else
                {
                    revoked.Add(attempt.FencingToken);
                }
            }

            if (registration.SessionId is null)
            {
                ReleaseUndelivered(registration);
            }

            foreach (var queue in agent.Queues)
            {
                _readyQueuesTouched.Add(queue);
            }

            return new AgentSession(registration.AgentId, agent.SessionId, revoked);
        }));
    }

    public Task DisconnectAgentAsync(string agentId, string sessionId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            // A stream that ends after the agent reconnected (here or on another replica) belongs to an older session.
            if (_agents.TryGetValue(agentId, out var agent) && agent.SessionId == sessionId)
            {
                agent.Agent.State = AgentState.Disconnected;
            }
        }

        return Task.CompletedTask;
    }

    public Task<Agent> DrainAgentAsync(string agentId, CancellationToken cancellationToken = default) =>
        Task.FromResult(Mutate(() =>
        {
            if (!_agents.TryGetValue(agentId, out var agent))
            {
                throw new RunStoreException(RunStoreError.NotFound, ErrorReason.AgentNotFound, $"agent '{agentId}' not found; ListAgents shows the known agents");
            }

            if (agent.Agent.State == AgentState.Connected)
            {
                agent.Agent.State = AgentState.Draining;
            }

            _pendingSignals.Add(new AgentDrainRequested(agentId));
            return agent.Agent.Clone();
        }));

    public Task<IReadOnlyList<Agent>> ListAgentsAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var now = Now;
            IReadOnlyList<Agent> list = _agents.Values.OrderBy(a => a.Agent.AgentId, StringComparer.Ordinal).Select(a =>
            {
                var copy = a.Agent.Clone();
                if (IsSilent(a, now))
                {
                    copy.State = AgentState.Disconnected;
                }

                return copy;
            }).ToList();
            return Task.FromResult(list);
        }
    }

    /// <summary>
    /// Nobody heard from the agent (registration, claim or lease renewal) for a lease: the replica that served it may
    /// have died without ending its session, so it is shown DISCONNECTED.
    /// </summary>
    private bool IsSilent(EmbeddedAgent agent, DateTimeOffset now) =>
        agent.Agent.State is AgentState.Connected or AgentState.Draining
        && agent.Agent.LastHeartbeatAt is { } heard
        && now - heard.ToDateTimeOffset() > _options.LeaseDuration;

    public Task<IReadOnlyList<Assignment>> ClaimAsync(ClaimRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        request.Validate();
        return Task.FromResult(Mutate(() =>
        {
            if (!_agents.TryGetValue(request.AgentId, out var agent))
            {
                throw new RunStoreException(RunStoreError.NotFound, ErrorReason.AgentNotConnected, $"agent '{request.AgentId}' is not connected; send Hello (ConnectAgent) first");
            }

            var claimed = new List<Assignment>();

            // A claim for a stream the agent no longer reads: whatever it took would wait out its lease.
            if (request.SessionId is not null && request.SessionId != agent.SessionId)
            {
                return (IReadOnlyList<Assignment>)claimed;
            }

            var now = Now;
            ForgetExpiredClaims(now);
            if (request.ClaimId is not null && _claims.TryGetValue(request.ClaimId, out var record) && now < record.Expires)
            {
                agent.Agent.LastHeartbeatAt = Timestamp.FromDateTimeOffset(now);
                return Replay(agent, record);
            }

            if (agent.Agent.State != AgentState.Connected || request.MaxSteps <= 0)
            {
                return claimed;
            }

            // Claims come only from a replica serving the agent's stream: they count as hearing from it.
            agent.Agent.LastHeartbeatAt = Timestamp.FromDateTimeOffset(now);

            foreach (var queue in agent.Queues)
            {
                ClaimFromQueue(agent, queue, request.MaxSteps, claimed);
                if (claimed.Count >= request.MaxSteps || agent.FreeSlots <= 0)
                {
                    break;
                }
            }

            // The attempts belong to the claiming session: only its stream may report on them (until a reconnect of the
            // agent re-announces them).
            foreach (var assignment in claimed)
            {
                _activeByToken[assignment.FencingToken].Session = request.SessionId ?? string.Empty;
            }

            if (request.ClaimId is not null && claimed.Count > 0)
            {
                var expires = now + (2 * _options.LeaseDuration);
                _claims[request.ClaimId] = new ClaimRecord(expires, claimed.Select(a => a.FencingToken).ToArray());
                _claimExpiry.Enqueue((request.ClaimId, expires));
            }

            return claimed;
        }));
    }

    /// <summary>
    /// A claim repeated under its id: the attempts it took that are still current come back again (their leases renewed,
    /// their checkpoint and inputs read again), nothing new is taken. As the Redis claim script does.
    /// </summary>
    private List<Assignment> Replay(EmbeddedAgent agent, ClaimRecord record)
    {
        var replayed = new List<Assignment>(record.Tokens.Length);
        foreach (var token in record.Tokens)
        {
            if (_activeByToken.TryGetValue(token, out var step)
                && step.Token == token
                && step.Step.AgentId == agent.Agent.AgentId
                && StepStateMachine.IsActive(step.Step.State)
                && !step.CancelRequested)
            {
                step.LeaseExpiresAt = Now + _options.LeaseDuration;
                replayed.Add(ToAssignment(step));
            }
        }

        return replayed;
    }

    /// <summary>Claim records are kept for twice the lease: by then every attempt a record names has lost its lease unless renewed.</summary>
    private void ForgetExpiredClaims(DateTimeOffset now)
    {
        while (_claimExpiry.TryPeek(out var head) && head.Expires <= now)
        {
            _claimExpiry.Dequeue();
            if (_claims.TryGetValue(head.Id, out var record) && record.Expires == head.Expires)
            {
                _claims.Remove(head.Id);
            }
        }
    }

    /// <summary>What a claim with an id took: the fencing tokens of its attempts, in the order they were handed out.</summary>
    private sealed record ClaimRecord(DateTimeOffset Expires, long[] Tokens);

    /// <summary>
    /// Round-robin over the runs with READY steps in the queue, the way the Redis claim script walks its ring: the run
    /// at the front offers its best READY step; claimed, the run goes to the back (and may offer another step in the
    /// same claim); a step this agent cannot take now puts the run back at the end once the claim is done; a paused or
    /// ending run leaves the rotation until resumed; a run at its cap leaves it until one of its attempts ends.
    /// </summary>
    private void ClaimFromQueue(EmbeddedAgent agent, string queue, int maxSteps, List<Assignment> claimed)
    {
        var deferred = new List<EmbeddedRun>();
        bool QueueFull() => _queueLimits.TryGetValue(queue, out var queueLimit) && _queueUsed.GetValueOrDefault(queue) >= queueLimit;
        while (claimed.Count < maxSteps && agent.FreeSlots > 0 && !QueueFull())
        {
            // As many runs as steps could still be taken come off the front at once (the script's ZPOPMIN count).
            var batch = new List<EmbeddedRun>();
            while (batch.Count < Math.Min(maxSteps - claimed.Count, agent.FreeSlots) && _rotation.TryGetValue(queue, out var list) && list.First is { } first)
            {
                batch.Add(first.Value);
                TakeOffRotation(first.Value, queue);
            }

            if (batch.Count == 0)
            {
                break;
            }

            foreach (var run in batch)
            {
                if (claimed.Count >= maxSteps || agent.FreeSlots <= 0 || QueueFull())
                {
                    deferred.Add(run);
                    continue;
                }

                ClaimFromRun(agent, queue, run, claimed, deferred);
            }
        }

        foreach (var run in deferred)
        {
            AddToRotation(run, queue);
        }
    }

    /// <summary>The run at the front of the rotation offers its best READY step to the agent.</summary>
    private void ClaimFromRun(EmbeddedAgent agent, string queue, EmbeddedRun run, List<Assignment> claimed, List<EmbeddedRun> deferred)
    {
        if (!run.Ready.TryGetValue(queue, out var ready) || ready.Count == 0)
        {
            return;
        }

        if (!IsRunnable(run))
        {
            return;
        }

        if (run.Spec.Concurrency > 0 && run.Active >= run.Spec.Concurrency)
        {
            run.CapBlocked = true;
            return;
        }

        var step = ready.Min!;
        var key = step.Spec.ConcurrencyKey;
        var keyFull = key.Length > 0 && _keyLimits.TryGetValue(key, out var keyLimit) && _keyUsed.GetValueOrDefault(key) >= keyLimit;
        var serves = agent.Serves(step) && step.Slots <= agent.FreeSlots;
        var quota = serves && !keyFull ? QuotaExceeded(step) : null;
        if (!serves || keyFull || (quota is null && BudgetWait(step) is not null))
        {
            deferred.Add(run);
            return;
        }

        if (quota is not null)
        {
            // Refused before dispatch: it can never fit, so it fails for good.
            step.Step.Error = quota;
            SetStepState(step, StepState.Failed, quota);
            StepEnded(step);
            if (IsRunnable(run) && run.Ready.TryGetValue(queue, out var left) && left.Count > 0)
            {
                AddToRotation(run, queue);
            }

            return;
        }

        claimed.Add(Assign(agent, step));
        if (run.Ready.TryGetValue(queue, out var rest) && rest.Count > 0)
        {
            AddToRotation(run, queue);
        }
    }

    private Assignment Assign(EmbeddedAgent agent, EmbeddedStep step)
    {
        var run = step.Owner;
        var now = Now;
        step.Token = NextToken();
        step.Step.Attempt++;
        step.Step.AgentId = agent.Agent.AgentId;
        step.Step.Progress = 0;
        step.Step.ProgressMessage = "";
        step.CancelRequested = false;
        step.AssignedAt = now;
        step.LeaseExpiresAt = now + _options.LeaseDuration;
        foreach (var (unit, estimate) in step.Spec.Estimate)
        {
            if (run.Spec.Budget.ContainsKey(unit))
            {
                step.Reserved[unit] = estimate;
            }
        }

        RunEvents.AddUnits(run.Run.BudgetReserved, step.Reserved);
        run.Active++;
        _queueUsed[step.Queue] = _queueUsed.GetValueOrDefault(step.Queue) + 1;
        if (step.Spec.ConcurrencyKey.Length > 0)
        {
            _keyUsed[step.Spec.ConcurrencyKey] = _keyUsed.GetValueOrDefault(step.Spec.ConcurrencyKey) + 1;
        }

        agent.Agent.UsedSlots += step.Slots;
        _activeByToken[step.Token] = step;
        if (run.Run.State == RunState.Pending)
        {
            SetRunState(run, RunState.Running, $"step '{step.Spec.Id}' dispatched");
        }

        SetStepState(step, StepState.Assigned, $"claimed by agent {agent.Agent.AgentId}");
        return ToAssignment(step);
    }

    /// <summary>
    /// A new fencing token: one more than the last, and never below the store clock in microseconds since 1970, as the
    /// Redis store makes them (claim.lua), so the two stay one engine. Strictly increasing within the store's life.
    /// </summary>
    private long NextToken()
    {
        var micros = (Now - DateTimeOffset.UnixEpoch).Ticks / (TimeSpan.TicksPerMillisecond / 1000);
        _lastToken = Math.Max(_lastToken + 1, micros);
        return _lastToken;
    }

    /// <summary>The Assignment message of the step's current attempt: its spec, inputs and last checkpoint.</summary>
    private static Assignment ToAssignment(EmbeddedStep step)
    {
        var run = step.Owner;
        var spec = step.Spec.Clone();
        spec.Queue = step.Queue;
        spec.Slots = step.Slots;
        var assignment = new Assignment
        {
            RunId = run.Run.Id,
            StepId = step.Spec.Id,
            Attempt = step.Step.Attempt,
            FencingToken = step.Token,
            Spec = spec,
            LeaseExpiresAt = Timestamp.FromDateTimeOffset(step.LeaseExpiresAt),
            Traceparent = run.TraceParent,
            ReadyAt = step.ReadyAt == default ? null : Timestamp.FromDateTimeOffset(step.ReadyAt),
        };
        foreach (var index in step.Needs)
        {
            var need = run.Steps[index];
            if (need.Output is { } output)
            {
                assignment.Inputs.Add(new StepInput { StepId = need.Spec.Id, Data = output.Data, Uri = output.Uri, Type = output.Type });
            }
        }

        if (step.Checkpoint is { } checkpoint)
        {
            assignment.Checkpoint = checkpoint;
            assignment.HasCheckpoint = true;
        }

        return assignment;
    }

    public Task<IReadOnlyList<ReportOutcome>> ReportAsync(IReadOnlyList<AttemptReport> reports, CancellationToken cancellationToken = default)
    {
        ReportLimits.ThrowIfNotStepReports(reports);
        return Task.FromResult(Mutate(() =>
        {
            var outcomes = new List<ReportOutcome>(reports.Count);
            foreach (var report in reports)
            {
                outcomes.Add(Apply(report));
            }

            return (IReadOnlyList<ReportOutcome>)outcomes;
        }));
    }

    private ReportOutcome Apply(AttemptReport report)
    {
        if (!_runs.TryGetValue(report.Attempt.RunId, out var run) || !run.IndexById.TryGetValue(report.Attempt.StepId, out var index))
        {
            return ReportOutcome.UnknownAttempt;
        }

        var step = run.Steps[index];
        var message = ReportLimits.Normalize(report.Report);
        var isResult = message.MessageCase is ConnectRequest.MessageOneofCase.StepCompleted or ConnectRequest.MessageOneofCase.StepFailed
            or ConnectRequest.MessageOneofCase.StepDeclined;
        // A fencing token names an attempt; it does not prove who holds it. Another agent is refused before the repeat
        // check, so that only the holder learns its result was applied.
        if (report.AgentId is { Length: > 0 } agentId && step.Token == report.Attempt.FencingToken && step.Step.AgentId != agentId)
        {
            LogReportNotOwner(_logger, run.Run.Id, step.Spec.Id, report.Attempt.FencingToken, agentId, step.Step.AgentId);
            return ReportOutcome.NotOwner;
        }

        if (isResult && step.ResultToken == report.Attempt.FencingToken)
        {
            // Sent again after a reconnect whose acknowledgement was lost: applied once, acknowledged again. The repeat
            // comes on the agent's new stream, so the session is not checked here.
            return ReportOutcome.AlreadyApplied;
        }

        if (step.Token != report.Attempt.FencingToken || !StepStateMachine.IsActive(step.Step.State))
        {
            LogStaleReport(_logger, run.Run.Id, step.Spec.Id, report.Attempt.FencingToken, step.Token);
            return ReportOutcome.StaleToken;
        }

        // A session of the holder that no longer holds the attempt: the agent reconnected and its new stream took it over.
        if (report.SessionId is { Length: > 0 } sessionId && step.Session.Length > 0 && step.Session != sessionId)
        {
            LogReportNotOwner(_logger, run.Run.Id, step.Spec.Id, report.Attempt.FencingToken, $"{report.AgentId} (session {sessionId})", $"{step.Step.AgentId} (session {step.Session})");
            return ReportOutcome.NotOwner;
        }

        if (isResult)
        {
            step.ResultToken = report.Attempt.FencingToken;
        }

        var attempt = step.Step.Attempt;
        switch (message.MessageCase)
        {
            case ConnectRequest.MessageOneofCase.StepStarted:
                MarkStarted(step);
                break;

            case ConnectRequest.MessageOneofCase.StepProgress:
                var p = message.StepProgress;
                step.Step.Progress = Math.Clamp(p.Percent, 0, 100);
                step.Step.ProgressMessage = p.Message;
                if (step.ProgressEventsKept < ReportLimits.MaxProgressEventsPerStep)
                {
                    step.ProgressEventsKept++;
                    AppendEvent(run, (id, seq, t) => RunEvents.StepProgressed(id, seq, t, step.Spec.Id, attempt, step.Step.Progress, p.Message));
                }
                else if (step.Step.ProgressEventsDropped++ == 0)
                {
                    AppendEvent(run, (id, seq, t) => RunEvents.StepLogged(id, seq, t, step.Spec.Id, attempt, LogStream.Unspecified, [ReportLimits.ProgressTruncatedLine]));
                }

                break;

            case ConnectRequest.MessageOneofCase.StepCheckpoint:
                var data = message.StepCheckpoint.Data;
                if (data.Length > _options.OutputInlineLimit)
                {
                    MarkStarted(step);
                    EndAttempt(step, null);
                    AttemptFailed(step, $"checkpoint of {data.Length} bytes exceeds the {_options.OutputInlineLimit}-byte limit; keep checkpoints small or store them elsewhere", permanent: true, leaseLost: false);
                    break;
                }

                step.Checkpoint = data;
                step.Step.HasCheckpoint = true;
                AppendEvent(run, (id, seq, t) => RunEvents.StepCheckpointed(id, seq, t, step.Spec.Id, attempt, data.Length));
                break;

            case ConnectRequest.MessageOneofCase.StepLog:
                AppendLog(step, attempt, message.StepLog);
                break;

            case ConnectRequest.MessageOneofCase.StepCompleted:
                MarkStarted(step);
                Complete(step, message.StepCompleted);
                break;

            case ConnectRequest.MessageOneofCase.StepFailed:
                var failed = message.StepFailed;
                MarkStarted(step);
                EndAttempt(step, failed.Usage);
                var error = failed.TimedOut ? $"timed out: {failed.Error}" : failed.Error;
                AttemptFailed(step, string.IsNullOrEmpty(error) ? "failed" : error, failed.Permanent, leaseLost: false);
                break;

            case ConnectRequest.MessageOneofCase.StepDeclined:
                Decline(step, message.StepDeclined.Reason);
                break;

            default:
                throw RunStoreException.Invalid("message",
                    $"report for step '{step.Spec.Id}' carries {message.MessageCase}; send one of StepStarted, StepProgress, StepCheckpoint, StepLog, StepCompleted, StepFailed, StepDeclined");
        }

        return ReportOutcome.Accepted;
    }

    /// <summary>
    /// ASSIGNED -> RUNNING on a Started report, and before a result that arrives without one (the agent
    /// may drop a Started queued ahead of its result), so every attempt that ran passes RUNNING.
    /// </summary>
    private void MarkStarted(EmbeddedStep step)
    {
        if (step.Step.State == StepState.Assigned)
        {
            SetStepState(step, StepState.Running, "started");
        }
    }

    /// <summary>
    /// The agent could not take the attempt: its slots and budget reservation are released without charging anything,
    /// and the step is READY again with the attempt not counted (the next claim gives the same attempt number).
    /// </summary>
    /// <summary>
    /// A new session re-announces every attempt the agent holds. Its attempts still ASSIGNED that it does not name never
    /// reached it (sent on a stream that was already dead, e.g. blackholed) and are not running anywhere: declined on
    /// its behalf, so their steps are READY again without using an attempt instead of waiting out their leases.
    /// </summary>
    private void ReleaseUndelivered(AgentRegistration registration)
    {
        var announced = registration.RunningAttempts.Select(a => a.FencingToken).ToHashSet();
        var undelivered = _activeByToken
            .Where(e => e.Value.Step.AgentId == registration.AgentId && e.Value.Step.State == StepState.Assigned && !announced.Contains(e.Key))
            .OrderBy(e => e.Key)
            .ToList();
        foreach (var (_, step) in undelivered)
        {
            Decline(step, AgentSession.UndeliveredReason);
        }
    }

    private void Decline(EmbeddedStep step, string reason)
    {
        var agentId = step.Step.AgentId;
        EndAttempt(step, null, chargeUsage: false);
        if (step.CancelRequested)
        {
            AttemptFailed(step, "cancelled", permanent: true, leaseLost: false);
            return;
        }

        // The history entry names the declined attempt; then its number is given back.
        SetStepState(step, StepState.Ready, $"declined by agent {agentId}: {reason}");
        step.Step.Attempt--;
    }

    private void Complete(EmbeddedStep step, StepCompleted completed)
    {
        EndAttempt(step, completed.Usage);
        if (step.CancelRequested)
        {
            // The run was cancelled while this attempt ran: its end is accepted, the step does not count as done.
            AttemptFailed(step, "cancelled", permanent: true, leaseLost: false);
            return;
        }

        if (completed.Output.Length > _options.OutputInlineLimit)
        {
            AttemptFailed(step, $"output of {completed.Output.Length} bytes exceeds the {_options.OutputInlineLimit}-byte inline limit; store it elsewhere and report output_uri", permanent: true, leaseLost: false);
            return;
        }

        step.Output = new StepOutput { Data = completed.Output, Uri = completed.OutputUri, Type = step.Spec.OutputType };
        step.Step.OutputSize = completed.Output.Length;
        step.Step.OutputDropped = false;
        step.Step.Error = "";
        step.Step.Progress = 100;
        SetStepState(step, StepState.Succeeded, "completed");
        DropConsumedOutputs(step);
        StepEnded(step);
    }

    public Task<IReadOnlyList<long>> RenewLeasesAsync(string agentId, IReadOnlyList<AttemptRef> attempts, string? sessionId = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(attempts);
        lock (_gate)
        {
            var now = Now;
            if (_agents.TryGetValue(agentId, out var agent))
            {
                agent.Agent.LastHeartbeatAt = Timestamp.FromDateTimeOffset(now);
            }

            var stop = new List<long>();
            foreach (var attempt in attempts)
            {
                if (!_activeByToken.TryGetValue(attempt.FencingToken, out var step) || step.Step.AgentId != agentId
                    || (!string.IsNullOrEmpty(sessionId) && step.Session.Length > 0 && step.Session != sessionId))
                {
                    stop.Add(attempt.FencingToken);
                    continue;
                }

                // A cancelled attempt keeps its lease so it can report how it ended.
                step.LeaseExpiresAt = now + _options.LeaseDuration;
                if (step.CancelRequested)
                {
                    stop.Add(attempt.FencingToken);
                }
            }

            return Task.FromResult<IReadOnlyList<long>>(stop);
        }
    }

    /// <summary>
    /// A step's log lines go to the run's events up to <see cref="ReportLimits.MaxLogLinesPerStep"/>; the rest are
    /// counted in the step, and one event marks where dropping began. The first lines are kept, as the Redis store
    /// keeps them (its stream is append-only, so keeping the tail would mean deleting entries readers may hold).
    /// </summary>
    private void AppendLog(EmbeddedStep step, int attempt, StepLog log)
    {
        var run = step.Owner;
        var room = ReportLimits.MaxLogLinesPerStep - step.LogLinesKept;
        if (log.Lines.Count <= room)
        {
            step.LogLinesKept += log.Lines.Count;
            AppendEvent(run, (id, seq, t) => RunEvents.StepLogged(id, seq, t, step.Spec.Id, attempt, log.Stream, log.Lines));
            return;
        }

        if (room > 0)
        {
            var kept = log.Lines.Take(room).ToList();
            step.LogLinesKept += room;
            AppendEvent(run, (id, seq, t) => RunEvents.StepLogged(id, seq, t, step.Spec.Id, attempt, log.Stream, kept));
        }

        var first = step.Step.LogLinesDropped == 0;
        step.Step.LogLinesDropped += log.Lines.Count - Math.Max(room, 0);
        if (first)
        {
            AppendEvent(run, (id, seq, t) => RunEvents.StepLogged(id, seq, t, step.Spec.Id, attempt, log.Stream, [ReportLimits.LogTruncatedLine]));
        }
    }

    public Task<MaintenanceResult> RunMaintenanceAsync(int max, CancellationToken cancellationToken = default) =>
        Task.FromResult(Mutate(() =>
        {
            // One step handles at most MaxBatch of each kind, as the Redis store does.
            max = Math.Clamp(max, 1, RunStoreOptions.MaxBatch);
            var now = Now;
            var timedOut = _activeByToken.Values
                .Where(s => s.Spec.Timeout is { } t && now >= s.AssignedAt + t.ToTimeSpan())
                .OrderBy(s => s.AssignedAt + s.Spec.Timeout.ToTimeSpan())
                .ThenBy(s => $"{s.Token}|{s.Owner.Run.Id}|{s.Spec.Id}", StringComparer.Ordinal)
                .Take(max)
                .ToList();
            foreach (var step in timedOut)
            {
                var limit = step.Spec.Timeout.ToTimeSpan();
                _pendingSignals.Add(new AttemptCancelRequested(step.Step.AgentId, step.Token, $"timed out after {limit}"));
                EndAttempt(step, null);
                AttemptFailed(step, $"timed out after {limit}", permanent: false, leaseLost: false);
            }

            // Equal deadlines in the order of the Redis store's lease set: by member "<token>|<run>|<step>" as text.
            var expired = _activeByToken.Values.Where(s => s.LeaseExpiresAt <= now)
                .OrderBy(s => s.LeaseExpiresAt).ThenBy(s => $"{s.Token}|{s.Owner.Run.Id}|{s.Spec.Id}", StringComparer.Ordinal).Take(max).ToList();
            foreach (var step in expired)
            {
                LogLeaseExpired(_logger, step.Owner.Run.Id, step.Spec.Id, step.Step.Attempt, step.Step.AgentId);
                _pendingSignals.Add(new AttemptCancelRequested(step.Step.AgentId, step.Token, "lease expired"));
                var agentId = step.Step.AgentId;
                EndAttempt(step, null);
                AttemptFailed(step, $"lease expired on agent {agentId}", permanent: false, leaseLost: true);
            }

            var due = _retryWaiting.Where(s => s.RetryDueAt <= now)
                .OrderBy(s => s.RetryDueAt).ThenBy(s => $"{s.Owner.Run.Id}|{s.Spec.Id}", StringComparer.Ordinal).Take(max).ToList();
            foreach (var step in due)
            {
                SetStepState(step, StepState.Ready, $"retry backoff elapsed; attempt {step.Step.Attempt + 1} queued");
            }

            // Deletions follow the entries of this call's other changes in the feed, as Redis appends them after its flush.
            FlushFeed();
            var deleted = 0;
            while (deleted < max && _expiring.Min is { ExpiresAt: { } deadline } gone && deadline <= now)
            {
                DeleteRun(gone);
                deleted++;
            }

            // Agents gone longer than AgentRetention with nothing held, longest silent first (ties by id, as Redis).
            var pruned = _agents.Values
                .Where(a => a.Agent.State == AgentState.Disconnected && a.Agent.UsedSlots <= 0
                    && a.Agent.LastHeartbeatAt.ToDateTimeOffset() + _options.AgentRetention <= now)
                .OrderBy(a => a.Agent.LastHeartbeatAt.ToDateTimeOffset())
                .ThenBy(a => a.Agent.AgentId, StringComparer.Ordinal)
                .Take(max)
                .ToList();
            foreach (var agent in pruned)
            {
                _agents.Remove(agent.Agent.AgentId);
            }

            return new MaintenanceResult(expired.Count, due.Count, timedOut.Count, deleted, pruned.Count);
        }));

    public TimeProvider Clock => _time;

    public Task<LeaseFreezeResult> FreezeLeasesAsync(DateTimeOffset since, DateTimeOffset until, CancellationToken cancellationToken = default)
    {
        var (sinceMs, untilMs) = LeaseFreeze.Validate(since, until);
        return Task.FromResult(Mutate(() =>
        {
            // In whole milliseconds, as the Redis store keeps its lease deadlines and frozen-until mark.
            untilMs = Math.Min(untilMs, Now.ToUnixTimeMilliseconds());
            var startMs = Math.Max(sinceMs, _leasesFrozenUntilMs);
            var shiftMs = Math.Min(untilMs - startMs, (long)_options.LeaseDuration.TotalMilliseconds);
            if (shiftMs <= 0)
            {
                return new LeaseFreezeResult(TimeSpan.Zero, 0);
            }

            _leasesFrozenUntilMs = untilMs;
            var start = DateTimeOffset.FromUnixTimeMilliseconds(startMs);
            var shift = TimeSpan.FromMilliseconds(shiftMs);
            var moved = 0;
            foreach (var step in _activeByToken.Values)
            {
                // A lease that ended before the frozen part began was lost before the outage; it stays lost.
                if (step.LeaseExpiresAt > start)
                {
                    step.LeaseExpiresAt += shift;
                    moved++;
                }
            }

            return new LeaseFreezeResult(shift, moved);
        }));
    }

    /// <summary>Forgets a finished run whose retention passed: the run, its events, its idempotency key and any queue place.</summary>
    private void DeleteRun(EmbeddedRun run)
    {
        _expiring.Remove(run);
        _runs.Remove(run.Run.Id);
        FeedAppend(run, deleted: true);
        if (run.Run.IdempotencyKey.Length > 0
            && _runIdByIdempotencyKey.TryGetValue(run.Run.IdempotencyKey, out var holder)
            && holder == run.Run.Id)
        {
            _runIdByIdempotencyKey.Remove(run.Run.IdempotencyKey);
        }

        foreach (var (queue, node) in run.RotationNodes)
        {
            if (_rotation.TryGetValue(queue, out var list) && node.List == list)
            {
                list.Remove(node);
            }
        }

        run.RotationNodes.Clear();
        run.Ready.Clear();
    }
}
