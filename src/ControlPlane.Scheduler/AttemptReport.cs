using ControlPlane.V1;

namespace ControlPlane.Scheduler;

/// <summary>
/// One report about an attempt. <see cref="Report"/> is the agent's envelope carrying exactly one of
/// StepStarted, StepProgress, StepCheckpoint, StepLog, StepCompleted or StepFailed.
/// </summary>
public sealed record AttemptReport(AttemptRef Attempt, ConnectRequest Report)
{
    /// <summary>
    /// The agent whose stream the report came on. When set, the store applies the report only if that agent holds the
    /// attempt (<see cref="ReportOutcome.NotOwner"/> otherwise): a fencing token names an attempt, it does not prove who
    /// holds it. Null: not checked, for callers that hold the attempt by construction (tools and tests driving a store).
    /// </summary>
    public string? AgentId { get; init; }

    /// <summary>
    /// The agent session (<see cref="AgentSession.SessionId"/>) of that stream. When set, the report is applied only if
    /// this session holds the attempt: it claimed it, or re-announced it in its Hello. A stream the agent has since
    /// replaced by a reconnect that took the attempt over is refused (<see cref="ReportOutcome.NotOwner"/>). Null: any
    /// session of the agent.
    /// </summary>
    public string? SessionId { get; init; }
}
