namespace ControlPlane.Scheduler;

/// <summary>The outcome of ConnectAgentAsync: the attempts the agent no longer owns.</summary>
public sealed record AgentSession(string AgentId, IReadOnlyList<long> RevokedTokens);
