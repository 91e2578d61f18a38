namespace ControlPlane.Scheduler;

/// <summary>One attempt, as the scheduler knows it from the assignment it sent.</summary>
public readonly record struct AttemptRef(string RunId, string StepId, long FencingToken);
