namespace ControlPlane.Scheduler;

public enum ReportOutcome
{
    /// <summary>Applied.</summary>
    Accepted,
    /// <summary>Refused: the fencing token is not the step's current one (a newer attempt owns the step, or it ended).</summary>
    StaleToken,
    /// <summary>Refused: no such run or step.</summary>
    UnknownAttempt,
}
