using ControlPlane.V1;

namespace ControlPlane.Scheduler;

// Small immutable records exchanged with IRunStore; kept together because each is a few lines.

/// <summary>The outcome of SubmitRunAsync: the run, and whether this call created it.</summary>
public sealed record SubmitRunResult(Run Run, bool Created);

/// <summary>ListRuns filter and paging. PageSize 0 means 100; PageToken is opaque.</summary>
public sealed record RunQuery(RunState State = RunState.Unspecified, IReadOnlyDictionary<string, string>? Labels = null, int PageSize = 0, string? PageToken = null);

public sealed record RunPage(IReadOnlyList<Run> Runs, string? NextPageToken);

public sealed record GateDecisionInput(string RunId, string StepId, bool Approve, string DecidedBy, string Comment);

/// <summary>What an agent says about itself in Hello.</summary>
public sealed record AgentRegistration(
    string AgentId,
    string Host,
    IReadOnlyList<string> Frameworks,
    IReadOnlyList<string> Queues,
    IReadOnlyDictionary<string, string> Labels,
    int Slots,
    IReadOnlyList<string> Handlers,
    IReadOnlyList<AttemptRef> RunningAttempts);

/// <summary>The outcome of ConnectAgentAsync: the attempts the agent no longer owns.</summary>
public sealed record AgentSession(string AgentId, IReadOnlyList<long> RevokedTokens);

/// <summary>One attempt, as the scheduler knows it from the assignment it sent.</summary>
public readonly record struct AttemptRef(string RunId, string StepId, long FencingToken);

public sealed record ClaimRequest(string AgentId, int MaxSteps);

/// <summary>
/// One report about an attempt. <see cref="Report"/> is the agent's envelope carrying exactly one of
/// StepStarted, StepProgress, StepCheckpoint, StepLog, StepCompleted or StepFailed.
/// </summary>
public sealed record AttemptReport(AttemptRef Attempt, ConnectRequest Report);

public enum ReportOutcome
{
    /// <summary>Applied.</summary>
    Accepted,
    /// <summary>Refused: the fencing token is not the step's current one (a newer attempt owns the step, or it ended).</summary>
    StaleToken,
    /// <summary>Refused: no such run or step.</summary>
    UnknownAttempt,
}

/// <summary>What one maintenance pass did.</summary>
public sealed record MaintenanceResult(int LeasesExpired, int RetriesReleased, int TimedOut);

public sealed record SlotUsage(string Kind, string Name, long Used, long Limit);

/// <summary>Counters a test can assert on: every Used and every reservation is 0 once all runs are terminal.</summary>
public sealed record StoreStats(
    IReadOnlyList<QueueStats> Queues,
    IReadOnlyList<SlotUsage> Slots,
    IReadOnlyDictionary<string, double> BudgetReserved);

/// <summary>Something other processes sharing the store should react to.</summary>
public abstract record StoreSignal;

/// <summary>A queue has READY steps: agents serving it should claim.</summary>
public sealed record ReadyWork(string Queue) : StoreSignal;

/// <summary>A run's event log grew: watchers should read from their last seq.</summary>
public sealed record RunEventsAppended(string RunId, long LastSeq) : StoreSignal;

/// <summary>An attempt must be stopped: the agent holding it gets CancelAttempt.</summary>
public sealed record AttemptCancelRequested(string AgentId, long FencingToken, string Reason) : StoreSignal;

/// <summary>An agent was drained: its connection sends Drain.</summary>
public sealed record AgentDrainRequested(string AgentId) : StoreSignal;
