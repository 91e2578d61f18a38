namespace ControlPlane.Soak;

/// <summary>The faults the soak injects, by the names the summary and <c>--faults</c> use.</summary>
internal static class FaultKinds
{
    public const string AgentKill = "agent-kill9";
    public const string ReplicaKill = "replica-kill9";
    public const string AgentStop = "agent-sigstop";
    public const string ReplicaStop = "replica-sigstop";
    public const string RedisRestart = "redis-restart";
    public const string RedisKill = "redis-kill9";
    public const string ProxyCut = "proxy-cut";
    public const string ProxyBlackhole = "proxy-blackhole";

    public static readonly IReadOnlyList<string> All = [AgentKill, ReplicaKill, AgentStop, ReplicaStop, RedisRestart, RedisKill, ProxyCut, ProxyBlackhole];

    public static string AllNames => string.Join(",", All);
}
