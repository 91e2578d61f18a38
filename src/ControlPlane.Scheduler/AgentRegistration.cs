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
    IReadOnlyList<AttemptRef> RunningAttempts)
{
    /// <summary>
    /// Most slots an agent may announce, and most attempts it may re-announce: the store takes every attempt
    /// of a registration in one atomic step, so the number is bounded (the agent's own Slots setting has the same cap).
    /// </summary>
    public const int MaxSlots = 10_000;

    /// <summary>
    /// Set when a stream registers again (its slot count changed): the store keeps this session instead of opening a
    /// new one. Null for a Hello, which always opens a new session.
    /// </summary>
    public string? SessionId { get; init; }
}
