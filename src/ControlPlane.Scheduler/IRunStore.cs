using ControlPlane.V1;

namespace ControlPlane.Scheduler;

/// <summary>
/// Where runs, steps, attempts, queues, slots and events live. Every method is one atomic state
/// change (one Lua script on Redis); the embedded and Redis implementations pass one contract suite.
/// Failures that a caller can fix are <see cref="RunStoreException"/> with a <see cref="RunStoreError"/>.
/// </summary>
public interface IRunStore : IAsyncDisposable
{
    // ---- Runs (RunService) ------------------------------------------------------------------

    /// <summary>
    /// Validates <paramref name="spec"/> (throws <see cref="RunSpecValidationException"/> listing every
    /// violation), then writes the run and its steps and queues the root steps. The same non-empty
    /// <paramref name="idempotencyKey"/> returns the run it first created, with Created = false.
    /// </summary>
    Task<SubmitRunResult> SubmitRunAsync(RunSpec spec, string? idempotencyKey, CancellationToken cancellationToken = default);

    /// <summary>
    /// As <see cref="SubmitRunAsync(RunSpec, string?, CancellationToken)"/>, keeping the run's trace context
    /// <paramref name="traceParent"/> (a W3C traceparent; null or empty for none, else <see cref="ArgumentException"/> when
    /// malformed) with the run: <see cref="Run.TraceId"/> is its trace id, and every claimed attempt of the run carries it
    /// in <see cref="Assignment.Traceparent"/>. A repeated idempotency key keeps the first call's context.
    /// </summary>
    Task<SubmitRunResult> SubmitRunAsync(RunSpec spec, string? idempotencyKey, string? traceParent, CancellationToken cancellationToken = default);

    /// <summary>The run with its steps and histories, or null when there is no such run.</summary>
    Task<Run?> GetRunAsync(string runId, CancellationToken cancellationToken = default);

    /// <summary>Runs newest first, without steps; filtered by state and labels; paged.</summary>
    Task<RunPage> ListRunsAsync(RunQuery query, CancellationToken cancellationToken = default);

    /// <summary>Summaries of the named runs (as ListRunsAsync gives them: no steps, no history), in order; null for a run that does not exist.</summary>
    Task<IReadOnlyList<Run?>> GetRunSummariesAsync(IReadOnlyList<string> runIds, CancellationToken cancellationToken = default);

    /// <summary>
    /// The namespace's run change feed (WatchRuns): every submit, run or step state change and retention deletion
    /// appends an entry, one per run per store call. The feed keeps at least the newest
    /// <see cref="RunStoreOptions.RunFeedLength"/> entries (Redis may keep somewhat more). A null
    /// <paramref name="afterCursor"/> reads nothing and returns the newest entry's cursor, to read what follows
    /// from; otherwise the entries after it, oldest first, at most <paramref name="max"/> (at most 1000). A cursor
    /// the feed no longer continues from comes back with <see cref="RunChangePage.CursorExpired"/>; one this store
    /// never issued in any form is InvalidArgument on after_cursor.
    /// </summary>
    Task<RunChangePage> ReadRunChangesAsync(string? afterCursor, int max, CancellationToken cancellationToken = default);

    /// <summary>
    /// Ready and blocked steps become CANCELLED; running attempts are flagged for cancellation
    /// (signalled with <see cref="AttemptCancelRequested"/>); nothing new is dispatched. The run is
    /// CANCELLING until its last attempt ends, then CANCELLED. Terminal runs: FailedPrecondition.
    /// </summary>
    Task<Run> CancelRunAsync(string runId, string reason, CancellationToken cancellationToken = default);

    /// <summary>RUNNING/PENDING -> PAUSED: nothing new is dispatched; running attempts finish.</summary>
    Task<Run> PauseRunAsync(string runId, CancellationToken cancellationToken = default);

    /// <summary>PAUSED -> RUNNING (or straight to its terminal state when nothing is left to run).</summary>
    Task<Run> ResumeRunAsync(string runId, CancellationToken cancellationToken = default);

    /// <summary>
    /// A FAILED or CANCELLED run: its failed, cancelled and skipped steps go back to BLOCKED/READY with
    /// a fresh attempt budget; succeeded steps keep their outputs. The run is RUNNING again.
    /// </summary>
    Task<Run> RetryRunAsync(string runId, CancellationToken cancellationToken = default);

    /// <summary>Approves (SUCCEEDED) or rejects (FAILED) a gate in WAITING_APPROVAL.</summary>
    Task<Run> DecideGateAsync(GateDecisionInput decision, CancellationToken cancellationToken = default);

    /// <summary>Events with seq &gt; <paramref name="afterSeq"/>, oldest first, at most <paramref name="max"/>.</summary>
    Task<IReadOnlyList<RunEvent>> ReadEventsAsync(string runId, long afterSeq, int max, CancellationToken cancellationToken = default);

    /// <summary>The step's output; null when the step has none (not finished, or dropped after its consumers succeeded).</summary>
    Task<StepOutput?> GetStepOutputAsync(string runId, string stepId, CancellationToken cancellationToken = default);

    // ---- Agents (AgentService) --------------------------------------------------------------

    /// <summary>
    /// Registers or updates an agent (its queues, frameworks, handlers, slots) as CONNECTED and opens a new agent
    /// session (<see cref="AgentSession.SessionId"/>), which becomes the agent's current one; a registration that
    /// names its <see cref="AgentRegistration.SessionId"/> keeps that session. The attempts it re-announces keep
    /// their leases when their tokens are still current; the rest come back in
    /// <see cref="AgentSession.RevokedTokens"/> so the agent stops them. A new session (no
    /// <see cref="AgentRegistration.SessionId"/>) re-announces everything the agent holds: its attempts still ASSIGNED
    /// that it does not name never reached it, and are declined on its behalf (READY again, attempt given back).
    /// </summary>
    /// <remarks>
    /// Agent sessions: every accepted Hello opens one, and the store remembers the newest per agent. Connection state
    /// changes only through the current session, so two replicas that both served the agent (the old stream ending
    /// late on one, the reconnect on the other) never leave it wrongly DISCONNECTED. An agent nobody has heard from
    /// (no registration, claim or lease renewal) for <see cref="RunStoreOptions.LeaseDuration"/> is listed
    /// DISCONNECTED, so a replica that died without ending its sessions does not keep its agents CONNECTED.
    /// </remarks>
    Task<AgentSession> ConnectAgentAsync(AgentRegistration registration, CancellationToken cancellationToken = default);

    /// <summary>
    /// The stream of session <paramref name="sessionId"/> ended: when that is still the agent's current session, the
    /// agent is DISCONNECTED; otherwise (it reconnected since, possibly to another replica) nothing changes. Its
    /// attempts keep their leases until they expire.
    /// </summary>
    Task DisconnectAgentAsync(string agentId, string sessionId, CancellationToken cancellationToken = default);

    /// <summary>The agent takes nothing new (ClaimAsync returns nothing for it); signalled with <see cref="AgentDrainRequested"/>.</summary>
    Task<Agent> DrainAgentAsync(string agentId, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<Agent>> ListAgentsAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Takes up to <see cref="ClaimRequest.MaxSteps"/> READY steps the agent can serve (its queues,
    /// frameworks, handlers and free slots), round-robin by run within a queue, then by priority;
    /// each only when the run cap, queue cap, concurrency-key cap and the run's budget allow, all
    /// checked and taken atomically. A step whose estimate does not fit the remaining budget fails
    /// (QUOTA_EXCEEDED) instead. Each claimed step is ASSIGNED with attempt+1, a new fencing token
    /// and a lease, and comes back with its spec, inputs, last checkpoint and the run's trace context (the traceparent kept
    /// at submit, empty for a run submitted without one, which the scheduler replaces with its attempt span's). The attempt belongs to the claim's
    /// <see cref="ClaimRequest.SessionId"/> (or, when none is named, to any session of the agent). Fencing tokens are
    /// positive and strictly increasing, and never below the store's own clock (Redis: its TIME) in microseconds since 1970,
    /// so a store that lost its data (Redis flushed, or restarted without its last writes) does not hand out a token again.
    /// </summary>
    /// <remarks>
    /// A claim's reply can be lost after the store took the steps (Redis ran the script, the connection broke): the
    /// caller repeats it with the same <see cref="ClaimRequest.ClaimId"/>, which returns the attempts that claim took and
    /// that are still current, with renewed leases, and takes nothing new. A claim naming a
    /// <see cref="ClaimRequest.SessionId"/> that is no longer the agent's current session takes nothing.
    /// </remarks>
    Task<IReadOnlyList<Assignment>> ClaimAsync(ClaimRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// Applies a batch of attempt reports (started, progress, checkpoint, log, completed, failed) in
    /// order, each checked against the step's current fencing token and, when the report names them, against the agent
    /// and agent session that hold the attempt (<see cref="AttemptReport.AgentId"/>, <see cref="AttemptReport.SessionId"/>). Completion stores the output,
    /// reconciles the budget, releases slots, unblocks children, drops inputs nobody needs any more
    /// and finishes the run when every step is terminal. One outcome per report, in order. What a report carries is
    /// held to ReportLimits first (clamped, cut, or a completion with unusable usage turned into a permanent failure),
    /// so one bad report never fails the others; a report that carries no step report at all refuses the whole
    /// call (InvalidArgument) before anything is applied.
    /// </summary>
    Task<IReadOnlyList<ReportOutcome>> ReportAsync(IReadOnlyList<AttemptReport> reports, CancellationToken cancellationToken = default);

    /// <summary>
    /// Extends the leases of the agent's attempts. Returns the tokens the agent must stop: stale ones, ones another agent
    /// or another session holds, and ones flagged for cancellation. <paramref name="sessionId"/> is the agent session of
    /// the stream the heartbeat came on (null: any session of the agent); an attempt it does not hold is not renewed.
    /// </summary>
    Task<IReadOnlyList<long>> RenewLeasesAsync(string agentId, IReadOnlyList<AttemptRef> attempts, string? sessionId = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// The reaper: attempts whose lease expired go back to READY with attempt+1, the same checkpoint and
    /// (at the next claim) a new token, or fail when out of attempts; their slots are freed. RETRY_WAIT
    /// steps whose backoff elapsed become READY. Attempts running past their step timeout are failed
    /// as timed out. Finished runs whose retention has passed since they finished are deleted with their
    /// events, outputs and index entries (GetRun then finds nothing). Does at most <paramref name="max"/> of each.
    /// </summary>
    Task<MaintenanceResult> RunMaintenanceAsync(int max, CancellationToken cancellationToken = default);

    /// <summary>
    /// Called by a replica whose store calls failed (the store unreachable) before its first maintenance pass once the
    /// store answers again: <paramref name="since"/> is the store time of its last successful pass, <paramref name="until"/>
    /// now. Nobody could renew a lease while the store was unreachable, so every lease still running at the start of the
    /// part of [since, until] not frozen before moves that much later, at most <see cref="RunStoreOptions.LeaseDuration"/>
    /// per call (a replica cut off for an hour must not keep dead agents' attempts for an hour). The store remembers
    /// how far it has frozen, so replicas that saw the same outage shift the leases once in total. An
    /// <paramref name="until"/> past the store's now counts as now; <paramref name="since"/> after <paramref name="until"/>
    /// or before 1970 is InvalidArgument.
    /// </summary>
    Task<LeaseFreezeResult> FreezeLeasesAsync(DateTimeOffset since, DateTimeOffset until, CancellationToken cancellationToken = default);

    /// <summary>The clock the store computes leases, timeouts and backoffs with (Redis: Redis's TIME), so callers can name store times.</summary>
    TimeProvider Clock { get; }

    /// <summary>Sets a cap shared across runs (queue or concurrency key); 0 removes it.</summary>
    Task SetLimitAsync(LimitKind kind, string name, int limit, CancellationToken cancellationToken = default);

    /// <summary>Queue depths and every slot counter (agent, run, queue, key) with its cap, plus budget reservations.</summary>
    Task<StoreStats> GetStatsAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Delivers <see cref="StoreSignal"/>s raised by any process sharing this store (Redis: pub/sub),
    /// until the returned handle is disposed. The handler must not block.
    /// </summary>
    Task<IAsyncDisposable> SubscribeAsync(Action<StoreSignal> handler, CancellationToken cancellationToken = default);
}
