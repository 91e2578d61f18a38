using ControlPlane.V1;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// The one transition table of a step. Both stores consult it (the Redis store renders
/// <see cref="Transitions"/> into its Lua scripts), so a transition not listed here never happens.
/// </summary>
internal static class StepStateMachine
{
    /// <summary>Every allowed (from, to) pair, with a short note on when it is taken.</summary>
    public static IReadOnlyList<(StepState From, StepState To)> Transitions { get; } =
    [
        // Needs satisfied: a task is queued, a gate waits for a decision.
        (StepState.Blocked, StepState.Ready),
        (StepState.Blocked, StepState.WaitingApproval),
        // An upstream step did not succeed (or all did, for run_if: on_failure).
        (StepState.Blocked, StepState.Skipped),
        (StepState.Blocked, StepState.Cancelled),

        // Claimed by an agent.
        (StepState.Ready, StepState.Assigned),
        // Its estimate can never fit the run's budget (QUOTA_EXCEEDED), refused before dispatch.
        (StepState.Ready, StepState.Failed),
        (StepState.Ready, StepState.Cancelled),

        (StepState.Assigned, StepState.Running),
        // An agent may complete or fail without having reported Started.
        (StepState.Assigned, StepState.Succeeded),
        (StepState.Assigned, StepState.Failed),
        (StepState.Assigned, StepState.RetryWait),
        // Lease expired: requeued for another agent.
        (StepState.Assigned, StepState.Ready),
        (StepState.Assigned, StepState.Cancelled),

        (StepState.Running, StepState.Succeeded),
        (StepState.Running, StepState.Failed),
        (StepState.Running, StepState.RetryWait),
        (StepState.Running, StepState.Ready),
        (StepState.Running, StepState.Cancelled),

        // Backoff elapsed.
        (StepState.RetryWait, StepState.Ready),
        (StepState.RetryWait, StepState.Cancelled),

        (StepState.WaitingApproval, StepState.Succeeded),
        (StepState.WaitingApproval, StepState.Failed),
        (StepState.WaitingApproval, StepState.Cancelled),

        // RetryRun: failed, cancelled and skipped steps start over.
        (StepState.Failed, StepState.Blocked),
        (StepState.Failed, StepState.Ready),
        (StepState.Failed, StepState.WaitingApproval),
        (StepState.Cancelled, StepState.Blocked),
        (StepState.Cancelled, StepState.Ready),
        (StepState.Cancelled, StepState.WaitingApproval),
        (StepState.Skipped, StepState.Blocked),
        (StepState.Skipped, StepState.Ready),
        (StepState.Skipped, StepState.WaitingApproval),
    ];

    private static readonly HashSet<(StepState, StepState)> Allowed = [.. Transitions];

    public static bool CanTransition(StepState from, StepState to) => Allowed.Contains((from, to));

    /// <summary>SUCCEEDED, FAILED, CANCELLED or SKIPPED: the step will not move again unless the run is retried.</summary>
    public static bool IsTerminal(StepState state) =>
        state is StepState.Succeeded or StepState.Failed or StepState.Cancelled or StepState.Skipped;

    /// <summary>ASSIGNED or RUNNING: an attempt holds slots, a lease and a fencing token.</summary>
    public static bool IsActive(StepState state) => state is StepState.Assigned or StepState.Running;
}
