using ControlPlane.Scheduler.Internal;
using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Scheduler;

/// <summary>
/// The in-process <see cref="IRunStore"/> for dev mode and tests: the same semantics as the Redis store,
/// with every call applied atomically under one lock. Signals go to subscribers after the lock is released.
/// </summary>
public sealed partial class EmbeddedRunStore : IRunStore
{
    private readonly Lock _gate = new();
    private readonly RunStoreOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    private readonly Dictionary<string, EmbeddedRun> _runs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _runIdByIdempotencyKey = new(StringComparer.Ordinal);
    private readonly Dictionary<string, EmbeddedAgent> _agents = new(StringComparer.Ordinal);
    private readonly Dictionary<long, EmbeddedStep> _activeByToken = [];
    private readonly HashSet<EmbeddedStep> _retryWaiting = [];

    // Claims with an id that took something, by claim id, and their ids in expiry order (expiries only grow).
    private readonly Dictionary<string, ClaimRecord> _claims = new(StringComparer.Ordinal);
    private readonly Queue<(string Id, DateTimeOffset Expires)> _claimExpiry = new();

    /// <summary>Finished runs with a retention, soonest deadline first, ties by run id: the order of Redis's cp:{ns}:expire.</summary>
    private readonly SortedSet<EmbeddedRun> _expiring = new(Comparer<EmbeddedRun>.Create((a, b) =>
    {
        var byDeadline = Nullable.Compare(a.ExpiresAt, b.ExpiresAt);
        return byDeadline != 0 ? byDeadline : string.CompareOrdinal(a.Run.Id, b.Run.Id);
    }));
    private readonly Dictionary<string, LinkedList<EmbeddedRun>> _rotation = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _queueUsed = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _keyUsed = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _queueLimits = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _keyLimits = new(StringComparer.Ordinal);

    private readonly List<StoreSignal> _pendingSignals = [];
    private readonly HashSet<string> _readyQueuesTouched = new(StringComparer.Ordinal);
    private readonly HashSet<EmbeddedRun> _runsTouched = [];
    private readonly List<Action<StoreSignal>> _subscribers = [];

    // The run change feed: entries by position (positions 1, 2, ... without gaps), the newest _feedLast, at most
    // RunFeedLength kept; runs whose state changed in the current call, in the order they first changed.
    private readonly Queue<RunChange> _feed = new();
    private readonly List<EmbeddedRun> _feedTouched = [];
    private readonly HashSet<EmbeddedRun> _feedTouchedSet = [];
    private long _feedLast;

    // The last fencing token handed out (NextToken).
    private long _lastToken;
    private long _nextRunSeq;
    private long _nextReadySeq;

    // How far leases have been frozen (FreezeLeasesAsync), in Unix ms: a later freeze shifts only past it.
    private long _leasesFrozenUntilMs;

    public EmbeddedRunStore(RunStoreOptions? options = null, TimeProvider? timeProvider = null, ILogger<EmbeddedRunStore>? logger = null)
    {
        _options = options ?? new RunStoreOptions();
        _options.Validate();
        _time = timeProvider ?? TimeProvider.System;
        _logger = logger ?? NullLogger<EmbeddedRunStore>.Instance;
    }

    private DateTimeOffset Now => _time.GetUtcNow();

    // ---- Runs ----------------------------------------------------------------------------------

    public Task<SubmitRunResult> SubmitRunAsync(RunSpec spec, string? idempotencyKey, CancellationToken cancellationToken = default) =>
        SubmitRunAsync(spec, idempotencyKey, traceParent: null, cancellationToken);

    public Task<SubmitRunResult> SubmitRunAsync(RunSpec spec, string? idempotencyKey, string? traceParent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        traceParent = RunTrace.Check(traceParent);
        if (idempotencyKey is { Length: > 0 } && idempotencyKey.Length > _options.MaxIdempotencyKeyLength)
        {
            throw RunStoreException.Invalid("idempotency_key",
                $"idempotency_key is {idempotencyKey.Length} characters; at most {_options.MaxIdempotencyKeyLength} are allowed");
        }

        RunSpecValidator.ThrowIfInvalid(spec);
        return Task.FromResult(Mutate(() =>
        {
            if (idempotencyKey is { Length: > 0 } && _runIdByIdempotencyKey.TryGetValue(idempotencyKey, out var existing))
            {
                return new SubmitRunResult(Snapshot(_runs[existing], withSteps: true), Created: false);
            }

            var run = CreateRun(spec.Clone(), idempotencyKey ?? "", traceParent);
            return new SubmitRunResult(Snapshot(run, withSteps: true), Created: true);
        }));
    }

    public Task<Run?> GetRunAsync(string runId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(_runs.TryGetValue(runId, out var run) ? Snapshot(run, withSteps: true) : null);
        }
    }

    public Task<RunPage> ListRunsAsync(RunQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        var pageSize = query.PageSize switch
        {
            < 0 => throw RunStoreException.Invalid("page_size", $"page_size is {query.PageSize}; use 0 (100) or 1..{_options.MaxPageSize}"),
            0 => 100,
            _ => Math.Min(query.PageSize, _options.MaxPageSize),
        };
        var before = long.MaxValue;
        if (!string.IsNullOrEmpty(query.PageToken) && !long.TryParse(query.PageToken, out before))
        {
            throw RunStoreException.Invalid("page_token", "page_token is not one this server issued; pass next_page_token from the previous response");
        }

        lock (_gate)
        {
            var matching = _runs.Values
                .Where(r => r.CreatedSeq < before)
                .Where(r => query.State == RunState.Unspecified || r.Run.State == query.State)
                .Where(r => query.Labels is null || query.Labels.All(l => r.Run.Labels.TryGetValue(l.Key, out var v) && v == l.Value))
                .OrderByDescending(r => r.CreatedSeq)
                .Take(pageSize + 1)
                .ToList();
            var page = matching.Take(pageSize).ToList();
            var next = matching.Count > pageSize ? page[^1].CreatedSeq.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
            return Task.FromResult(new RunPage(page.Select(r => Snapshot(r, withSteps: false)).ToList(), next));
        }
    }

    public Task<IReadOnlyList<Run?>> GetRunSummariesAsync(IReadOnlyList<string> runIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runIds);
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<Run?>>(
                runIds.Select(id => _runs.TryGetValue(id, out var run) ? Snapshot(run, withSteps: false) : null).ToList());
        }
    }

    public Task<RunChangePage> ReadRunChangesAsync(string? afterCursor, int max, CancellationToken cancellationToken = default)
    {
        var after = afterCursor is null ? (long?)null : RunFeedCursor.Parse(afterCursor);
        max = RunFeedCursor.Clamp(max);
        lock (_gate)
        {
            var newest = RunFeedCursor.Of(_feedLast);
            if (after is null)
            {
                return Task.FromResult(new RunChangePage([], newest, CursorExpired: false));
            }

            var oldest = _feed.Count > 0 ? long.Parse(_feed.Peek().Cursor, System.Globalization.CultureInfo.InvariantCulture) : _feedLast + 1;
            if (after > _feedLast || after < oldest - 1)
            {
                return Task.FromResult(new RunChangePage([], newest, CursorExpired: true));
            }

            var skip = (int)(after.Value - (oldest - 1));
            var changes = _feed.Skip(skip).Take(max).ToList();
            return Task.FromResult(new RunChangePage(changes, changes.Count > 0 ? changes[^1].Cursor : afterCursor!, CursorExpired: false));
        }
    }

    /// <summary>Notes that the run's state or one of its steps' changed in this call: one feed entry for it at the end of the call.</summary>
    private void FeedTouch(EmbeddedRun run)
    {
        if (_feedTouchedSet.Add(run))
        {
            _feedTouched.Add(run);
        }
    }

    /// <summary>Appends the entries of the runs changed so far in this call (Redis: at its flush).</summary>
    private void FlushFeed()
    {
        foreach (var run in _feedTouched)
        {
            FeedAppend(run, deleted: false);
        }

        _feedTouched.Clear();
        _feedTouchedSet.Clear();
    }

    /// <summary>Appends a feed entry, dropping the oldest beyond RunFeedLength.</summary>
    private void FeedAppend(EmbeddedRun run, bool deleted)
    {
        _feed.Enqueue(new RunChange(RunFeedCursor.Of(++_feedLast), run.Run.Id, run.Run.State, deleted));
        while (_feed.Count > _options.RunFeedLength)
        {
            _feed.Dequeue();
        }
    }

    public Task<Run> CancelRunAsync(string runId, string reason, CancellationToken cancellationToken = default) =>
        Task.FromResult(Mutate(() =>
        {
            var run = FindRun(runId);
            var state = run.Run.State;
            if (state == RunState.Cancelling)
            {
                return Snapshot(run, withSteps: true);
            }

            if (RunStateMachine.IsTerminal(state))
            {
                throw new RunStoreException(RunStoreError.FailedPrecondition, ErrorReason.RunStateConflict,
                    $"run {runId} is already {StateNames.Of(state)}; only a run that has not finished can be cancelled");
            }

            var why = string.IsNullOrEmpty(reason) ? "cancelled" : $"cancelled: {reason}";
            run.Run.Error = why;
            foreach (var step in run.Steps)
            {
                if (StepStateMachine.IsActive(step.Step.State))
                {
                    step.CancelRequested = true;
                    _pendingSignals.Add(new AttemptCancelRequested(step.Step.AgentId, step.Token, why));
                }
                else if (!StepStateMachine.IsTerminal(step.Step.State))
                {
                    SetStepState(step, StepState.Cancelled, why);
                    step.Step.Error = why;
                }
            }

            run.CapBlocked = false;
            SetRunState(run, run.Active > 0 ? RunState.Cancelling : RunState.Cancelled, why);
            return Snapshot(run, withSteps: true);
        }));

    public Task<Run> PauseRunAsync(string runId, CancellationToken cancellationToken = default) =>
        Task.FromResult(Mutate(() =>
        {
            var run = FindRun(runId);
            switch (run.Run.State)
            {
                case RunState.Paused:
                    break;
                case RunState.Pending or RunState.Running:
                    SetRunState(run, RunState.Paused, "paused");
                    break;
                default:
                    throw new RunStoreException(RunStoreError.FailedPrecondition, ErrorReason.RunStateConflict,
                        $"run {runId} is {StateNames.Of(run.Run.State)}; only a PENDING or RUNNING run can be paused");
            }

            return Snapshot(run, withSteps: true);
        }));

    public Task<Run> ResumeRunAsync(string runId, CancellationToken cancellationToken = default) =>
        Task.FromResult(Mutate(() =>
        {
            var run = FindRun(runId);
            switch (run.Run.State)
            {
                case RunState.Running or RunState.Pending:
                    break;
                case RunState.Paused:
                    if (run.Unfinished == 0)
                    {
                        FinishRun(run);
                    }
                    else
                    {
                        SetRunState(run, RunState.Running, "resumed");
                        run.CapBlocked = false;
                        RequeueRun(run);
                    }

                    break;
                default:
                    throw new RunStoreException(RunStoreError.FailedPrecondition, ErrorReason.RunStateConflict,
                        $"run {runId} is {StateNames.Of(run.Run.State)}; only a PAUSED run can be resumed");
            }

            return Snapshot(run, withSteps: true);
        }));

    public Task<Run> RetryRunAsync(string runId, CancellationToken cancellationToken = default) =>
        Task.FromResult(Mutate(() =>
        {
            var run = FindRun(runId);
            if (run.Run.State is not (RunState.Failed or RunState.Cancelled))
            {
                throw new RunStoreException(RunStoreError.FailedPrecondition, ErrorReason.RunStateConflict,
                    $"run {runId} is {StateNames.Of(run.Run.State)}; only a FAILED or CANCELLED run can be retried");
            }

            run.Run.Error = "";
            run.Run.FinishedAt = null;
            SetRunState(run, RunState.Running, "retried");
            var reset = new List<EmbeddedStep>();
            foreach (var step in run.Steps)
            {
                if (step.Step.State is StepState.Failed or StepState.Cancelled or StepState.Skipped)
                {
                    step.AttemptBase = step.Step.Attempt;
                    step.CancelRequested = false;
                    step.Step.Error = "";
                    step.Step.Progress = 0;
                    step.Step.ProgressMessage = "";
                    step.Step.FinishedAt = null;
                    SetStepState(step, StepState.Blocked, "run retried");
                    reset.Add(step);
                }
            }

            foreach (var step in reset)
            {
                Evaluate(step);
            }

            if (run.Unfinished == 0)
            {
                FinishRun(run);
            }

            return Snapshot(run, withSteps: true);
        }));

    public Task<Run> DecideGateAsync(GateDecisionInput decision, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(decision);
        return Task.FromResult(Mutate(() =>
        {
            var run = FindRun(decision.RunId);
            var step = FindStep(run, decision.StepId);
            if (!step.IsGate)
            {
                throw new RunStoreException(RunStoreError.FailedPrecondition, ErrorReason.NotAGate,
                    $"step '{decision.StepId}' is a task, not a gate; only gates take approval decisions");
            }

            if (step.Step.State != StepState.WaitingApproval)
            {
                throw new RunStoreException(RunStoreError.FailedPrecondition, ErrorReason.StepStateConflict,
                    $"gate '{decision.StepId}' is {StateNames.Of(step.Step.State)}; only a gate in STEP_STATE_WAITING_APPROVAL can be decided");
            }

            step.Step.DecidedBy = decision.DecidedBy;
            step.Step.DecisionComment = decision.Comment;
            AppendEvent(run, (r, seq, now) => RunEvents.GateDecided(r, seq, now, step.Spec.Id, decision.Approve, decision.DecidedBy, decision.Comment));
            var who = string.IsNullOrEmpty(decision.DecidedBy) ? "" : $" by {decision.DecidedBy}";
            var comment = string.IsNullOrEmpty(decision.Comment) ? "" : $": {decision.Comment}";
            if (decision.Approve)
            {
                SetStepState(step, StepState.Succeeded, $"approved{who}{comment}");
                DropConsumedOutputs(step);
            }
            else
            {
                step.Step.Error = $"rejected{who}{comment}";
                SetStepState(step, StepState.Failed, step.Step.Error);
            }

            StepEnded(step);
            return Snapshot(run, withSteps: true);
        }));
    }

    public Task<IReadOnlyList<RunEvent>> ReadEventsAsync(string runId, long afterSeq, int max, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var run = FindRun(runId);
            var take = Math.Clamp(max, 0, _options.EventReadBatch);
            var from = (int)Math.Clamp(afterSeq, 0, run.Events.Count);
            IReadOnlyList<RunEvent> events = run.Events.Skip(from).Take(take).Select(e => e.Clone()).ToList();
            return Task.FromResult(events);
        }
    }

    public Task<StepOutput?> GetStepOutputAsync(string runId, string stepId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var step = FindStep(FindRun(runId), stepId);
            return Task.FromResult(step.Output?.Clone());
        }
    }

    public Task SetLimitAsync(LimitKind kind, string name, int limit, CancellationToken cancellationToken = default)
    {
        var limits = kind switch
        {
            LimitKind.Queue => _queueLimits,
            LimitKind.ConcurrencyKey => _keyLimits,
            _ => throw RunStoreException.Invalid("kind", "kind must be LIMIT_KIND_QUEUE or LIMIT_KIND_CONCURRENCY_KEY"),
        };
        if (!RunSpecValidator.IsValidName(name))
        {
            throw RunStoreException.Invalid("name", $"name '{name}' must match [a-z0-9][a-z0-9._-]{{0,62}}");
        }

        if (limit < 0)
        {
            throw RunStoreException.Invalid("limit", $"limit is {limit}; use 0 to remove the cap or a positive number of steps");
        }

        Mutate(() =>
        {
            if (limit == 0)
            {
                limits.Remove(name);
            }
            else
            {
                limits[name] = limit;
            }

            // A raised cap may let waiting steps go.
            if (kind == LimitKind.Queue)
            {
                _readyQueuesTouched.Add(name);
            }
            else
            {
                foreach (var queue in _rotation.Keys)
                {
                    _readyQueuesTouched.Add(queue);
                }
            }

            return 0;
        });
        return Task.CompletedTask;
    }

    public Task<StoreStats> GetStatsAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            // Ready steps of runs off the rotation (paused, at their cap) count too.
            var readyByQueue = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var run in _runs.Values)
            {
                foreach (var (queue, ready) in run.Ready)
                {
                    readyByQueue[queue] = readyByQueue.GetValueOrDefault(queue) + ready.Count;
                }
            }

            var queueNames = new SortedSet<string>(StringComparer.Ordinal);
            queueNames.UnionWith(readyByQueue.Where(p => p.Value > 0).Select(p => p.Key));
            queueNames.UnionWith(_queueUsed.Keys);
            queueNames.UnionWith(_queueLimits.Keys);
            foreach (var agent in _agents.Values)
            {
                queueNames.UnionWith(agent.Queues);
            }

            var queues = queueNames.Select(q => new QueueStats
            {
                Queue = q,
                Ready = readyByQueue.GetValueOrDefault(q),
                Running = _queueUsed.GetValueOrDefault(q),
                Agents = _agents.Values.Count(a => a.Agent.State == AgentState.Connected && !IsSilent(a, Now) && a.Queues.Contains(q)),
            }).ToList();

            var slots = new List<SlotUsage>();
            slots.AddRange(_agents.Values.OrderBy(a => a.Agent.AgentId, StringComparer.Ordinal)
                .Select(a => new SlotUsage("agent", a.Agent.AgentId, a.Agent.UsedSlots, a.Agent.Slots)));
            slots.AddRange(_runs.Values.Where(r => r.Active != 0 || !RunStateMachine.IsTerminal(r.Run.State))
                .OrderBy(r => r.CreatedSeq).Select(r => new SlotUsage("run", r.Run.Id, r.Active, r.Spec.Concurrency)));
            slots.AddRange(_queueUsed.Keys.Union(_queueLimits.Keys).Order(StringComparer.Ordinal)
                .Select(q => new SlotUsage("queue", q, _queueUsed.GetValueOrDefault(q), _queueLimits.GetValueOrDefault(q))));
            slots.AddRange(_keyUsed.Keys.Union(_keyLimits.Keys).Order(StringComparer.Ordinal)
                .Select(k => new SlotUsage("key", k, _keyUsed.GetValueOrDefault(k), _keyLimits.GetValueOrDefault(k))));

            var reserved = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var run in _runs.Values)
            {
                foreach (var (unit, amount) in run.Run.BudgetReserved)
                {
                    reserved[unit] = reserved.GetValueOrDefault(unit) + amount;
                }
            }

            return Task.FromResult(new StoreStats(queues, slots, reserved));
        }
    }

    public Task<IAsyncDisposable> SubscribeAsync(Action<StoreSignal> handler, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_subscribers)
        {
            _subscribers.Add(handler);
        }

        return Task.FromResult<IAsyncDisposable>(new Subscription(this, handler));
    }

    public ValueTask DisposeAsync()
    {
        lock (_subscribers)
        {
            _subscribers.Clear();
        }

        return ValueTask.CompletedTask;
    }

    // ---- Plumbing ------------------------------------------------------------------------------

    /// <summary>Runs one state change under the lock, then publishes the signals it raised.</summary>
    private T Mutate<T>(Func<T> change)
    {
        T result;
        List<StoreSignal> signals;
        lock (_gate)
        {
            try
            {
                result = change();
            }
            finally
            {
                signals = TakeSignals();
            }
        }

        Publish(signals);
        return result;
    }

    private List<StoreSignal> TakeSignals()
    {
        FlushFeed();
        var signals = new List<StoreSignal>(_pendingSignals);
        signals.AddRange(_readyQueuesTouched.Where(q => _rotation.ContainsKey(q)).Select(q => new ReadyWork(q)));
        signals.AddRange(_runsTouched.Select(r => new RunEventsAppended(r.Run.Id, r.Run.LastEventSeq)));
        _pendingSignals.Clear();
        _readyQueuesTouched.Clear();
        _runsTouched.Clear();
        return signals;
    }

    private void Publish(List<StoreSignal> signals)
    {
        if (signals.Count == 0)
        {
            return;
        }

        Action<StoreSignal>[] handlers;
        lock (_subscribers)
        {
            handlers = [.. _subscribers];
        }

        foreach (var signal in signals)
        {
            foreach (var handler in handlers)
            {
                try
                {
                    handler(signal);
                }
#pragma warning disable CA1031 // A faulty subscriber must not undo a committed state change.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    LogSubscriberFailed(_logger, signal.GetType().Name, ex);
                }
            }
        }
    }

    private EmbeddedRun FindRun(string runId) =>
        _runs.TryGetValue(runId, out var run)
            ? run
            : throw new RunStoreException(RunStoreError.NotFound, ErrorReason.RunNotFound, $"run '{runId}' not found; check the run id (ListRuns shows existing runs)");

    private static EmbeddedStep FindStep(EmbeddedRun run, string stepId) =>
        run.IndexById.TryGetValue(stepId, out var index)
            ? run.Steps[index]
            : throw new RunStoreException(RunStoreError.NotFound, ErrorReason.StepNotFound,
                $"run '{run.Run.Id}' has no step '{stepId}'; its steps are {string.Join(", ", run.IndexById.Keys.Take(20))}");

    private sealed class Subscription(EmbeddedRunStore store, Action<StoreSignal> handler) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            lock (store._subscribers)
            {
                store._subscribers.Remove(handler);
            }

            return ValueTask.CompletedTask;
        }
    }
}
