namespace ControlPlane.Scheduler;

public enum ReportOutcome
{
    /// <summary>Applied.</summary>
    Accepted,
    /// <summary>Refused: the fencing token is not the step's current one (a newer attempt owns the step, or it ended).</summary>
    StaleToken,
    /// <summary>Refused: no such run or step.</summary>
    UnknownAttempt,
    /// <summary>
    /// A result (completed, failed, declined) of an attempt whose result was already applied, sent again after a
    /// reconnect because its acknowledgement was lost: nothing changes, and the agent may forget it as if accepted.
    /// </summary>
    AlreadyApplied,
    /// <summary>
    /// Refused: the attempt belongs to another agent, or to another session of this agent (it reconnected and its new
    /// stream re-announced the attempt). Nothing changes; the session that holds the attempt goes on undisturbed.
    /// </summary>
    NotOwner,
}
