namespace ControlPlane.Scheduler;

public sealed record ClaimRequest(string AgentId, int MaxSteps);
