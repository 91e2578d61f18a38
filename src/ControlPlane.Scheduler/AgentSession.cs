namespace ControlPlane.Scheduler;

/// <summary>
/// The outcome of ConnectAgentAsync: the session that now owns the agent's connection state, and the attempts the
/// agent no longer owns.
/// </summary>
/// <param name="AgentId">The agent.</param>
/// <param name="SessionId">
/// Names one accepted Hello (one Connect stream), unique across replicas and restarts. Only the newest session of an
/// agent changes its connection state: an older stream that a replica notices ending late does not disconnect an
/// agent that already reconnected elsewhere. Credentials bound to an agent's connection bind to this id.
/// </param>
/// <param name="RevokedTokens">Re-announced attempts whose fencing tokens are no longer current: the agent stops them.</param>
public sealed record AgentSession(string AgentId, string SessionId, IReadOnlyList<long> RevokedTokens)
{
    /// <summary>
    /// Why an assignment the agent did not re-announce when it opened a new session was declined on its behalf: it was
    /// still ASSIGNED, so it never reached the agent.
    /// </summary>
    public const string UndeliveredReason = "it reconnected without the assignment, which never reached it";
}
