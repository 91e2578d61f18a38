namespace ControlPlane.Scheduler;

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
