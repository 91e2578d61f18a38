using ControlPlane.V1;

namespace ControlPlane.Scheduler;

/// <summary>
/// One report about an attempt. <see cref="Report"/> is the agent's envelope carrying exactly one of
/// StepStarted, StepProgress, StepCheckpoint, StepLog, StepCompleted or StepFailed.
/// </summary>
public sealed record AttemptReport(AttemptRef Attempt, ConnectRequest Report);
