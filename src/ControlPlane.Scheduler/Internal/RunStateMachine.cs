using ControlPlane.V1;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// The one transition table of a run. Both stores consult it (the Redis store renders
/// <see cref="Transitions"/> into its Lua scripts), so a transition not listed here never happens.
/// </summary>
internal static class RunStateMachine
{
    /// <summary>Every allowed (from, to) pair.</summary>
    public static IReadOnlyList<(RunState From, RunState To)> Transitions { get; } =
    [
        // First dispatch (or a gate starts waiting).
        (RunState.Pending, RunState.Running),
        (RunState.Pending, RunState.Paused),
        // A root step failed before anything was dispatched (e.g. its estimate exceeds the budget).
        (RunState.Pending, RunState.Failed),
        (RunState.Pending, RunState.Cancelled),

        (RunState.Running, RunState.Paused),
        (RunState.Running, RunState.Succeeded),
        (RunState.Running, RunState.Failed),
        // Attempts are still running and were told to stop.
        (RunState.Running, RunState.Cancelling),
        // Nothing was running: cancelled at once.
        (RunState.Running, RunState.Cancelled),

        (RunState.Paused, RunState.Running),
        // Steps already running finish while paused; when that was the last work, the run ends.
        (RunState.Paused, RunState.Succeeded),
        (RunState.Paused, RunState.Failed),
        (RunState.Paused, RunState.Cancelling),
        (RunState.Paused, RunState.Cancelled),

        (RunState.Cancelling, RunState.Cancelled),

        // RetryRun.
        (RunState.Failed, RunState.Running),
        (RunState.Cancelled, RunState.Running),
    ];

    private static readonly HashSet<(RunState, RunState)> Allowed = [.. Transitions];

    public static bool CanTransition(RunState from, RunState to) => Allowed.Contains((from, to));

    /// <summary>SUCCEEDED, FAILED or CANCELLED.</summary>
    public static bool IsTerminal(RunState state) =>
        state is RunState.Succeeded or RunState.Failed or RunState.Cancelled;
}
