namespace ControlPlane.Scheduler;

public sealed record GateDecisionInput(string RunId, string StepId, bool Approve, string DecidedBy, string Comment);
