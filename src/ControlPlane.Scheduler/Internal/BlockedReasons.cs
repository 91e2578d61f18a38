namespace ControlPlane.Scheduler.Internal;

/// <summary>The wording of Step.blocked_reason, shared so both stores explain a waiting READY step alike.</summary>
internal static class BlockedReasons
{
    public static string RunPaused() => "run is paused; ResumeRun dispatches it";

    public static string RunCap(long used, long limit) => $"run cap reached ({used}/{limit} steps of this run assigned or running)";

    public static string QueueCap(string queue, long used, long limit) => $"queue cap reached: queue '{queue}' has {used}/{limit} steps assigned or running";

    public static string KeyCap(string key, long used, long limit) => $"concurrency key cap reached: '{key}' has {used}/{limit} steps assigned or running";

    public static string Budget(string unit, double estimate, double used, double reserved, double limit) =>
        $"budget: '{unit}' estimate {estimate} waits for reservations to settle (used {used} + reserved {reserved} of {limit})";

    public static string NoAgent(string queue, string framework, string handler) =>
        handler.Length > 0
            ? $"no connected agent serves queue '{queue}' with framework '{framework}' and handler '{handler}'"
            : $"no connected agent serves queue '{queue}' with framework '{framework}'";

    public static string NoFreeSlots(string queue) => $"every agent serving queue '{queue}' is busy (no free slots)";

    /// <summary>The error of a step failed before dispatch because its estimate can never fit (QUOTA_EXCEEDED).</summary>
    public static string QuotaExceeded(string unit, double estimate, double used, double limit) =>
        $"QUOTA_EXCEEDED: estimate {estimate} '{unit}' does not fit the run's budget ({used} used of {limit}); raise budget.{unit} or lower the estimate";
}
