using System.Globalization;
using StackExchange.Redis;

namespace ControlPlane.Soak;

/// <summary>
/// Scheduler RSS (VmRSS of each replica's current process, with its anonymous part, RssAnon: the managed heap and native
/// allocations, as against mapped assemblies and JIT code) and Redis used_memory at one moment.
/// </summary>
internal sealed record MemorySnapshot(IReadOnlyList<(string Replica, int Pid, double RssMiB, double AnonMiB)> Replicas, long RedisUsedMemory, int? RedisPid)
{
    public static async Task<MemorySnapshot> TakeAsync(SoakCluster cluster, IConnectionMultiplexer mux)
    {
        var replicas = cluster.Replicas.Where(r => r.Process is not null).Select(r => (r.Name, r.Process!.Id, StatusMiB(r.Process.Id, "VmRSS:"), StatusMiB(r.Process.Id, "RssAnon:"))).ToList();
        var info = await mux.GetServer(cluster.Redis.Configuration).InfoAsync("memory");
        var used = info.SelectMany(g => g).FirstOrDefault(kv => kv.Key == "used_memory").Value;
        return new MemorySnapshot(replicas, long.Parse(used ?? "0", CultureInfo.InvariantCulture), cluster.Redis.ProcessId);
    }

    public override string ToString() =>
        $"{string.Join(", ", Replicas.Select(r => $"{r.Replica} RSS {Mib(r.RssMiB)} (anonymous {Mib(r.AnonMiB)}, pid {r.Pid})"))}; redis used_memory {Mib(RedisUsedMemory / 1024.0 / 1024.0)} (pid {RedisPid})";

    /// <summary>
    /// The figures side by side, and with <paramref name="check"/> what is over 110 % of its warmed-up value. A process
    /// restarted since the warm-up (a kill -9 among the faults) has no warmed-up value to compare with, and says so.
    /// </summary>
    public static MemoryComparison Compare(MemorySnapshot? warm, MemorySnapshot end, bool check)
    {
        if (warm is null)
        {
            return new MemoryComparison($"at the end {end}; the soak was too short to take a warmed-up figure", []);
        }

        var parts = new List<string>();
        var violations = new List<string>();
        foreach (var (name, pid, rss, anon) in end.Replicas)
        {
            var before = warm.Replicas.FirstOrDefault(r => r.Replica == name);
            if (before.Pid != pid)
            {
                parts.Add($"{name} RSS {Mib(before.RssMiB)} (pid {before.Pid}) -> {Mib(rss)} (pid {pid}, restarted since: not comparable)");
                continue;
            }

            parts.Add($"{name} RSS {Mib(before.RssMiB)} -> {Mib(rss)} ({Percent(rss, before.RssMiB)}; anonymous {Mib(before.AnonMiB)} -> {Mib(anon)})");
            if (check && rss > before.RssMiB * 1.10)
            {
                violations.Add($"{name} RSS {Mib(rss)} at the end is over 110 % of {Mib(before.RssMiB)} once warmed up");
            }
        }

        var redisBefore = warm.RedisUsedMemory / 1024.0 / 1024.0;
        var redisEnd = end.RedisUsedMemory / 1024.0 / 1024.0;
        parts.Add($"redis used_memory {Mib(redisBefore)} -> {Mib(redisEnd)} ({Percent(redisEnd, redisBefore)}{(warm.RedisPid != end.RedisPid ? ", restarted since" : "")})");
        if (check && redisEnd > redisBefore * 1.10)
        {
            violations.Add($"redis used_memory {Mib(redisEnd)} at the end is over 110 % of {Mib(redisBefore)} once warmed up");
        }

        return new MemoryComparison(string.Join("; ", parts), violations);
    }

    private static double StatusMiB(int pid, string field)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
            return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static string Mib(double value) => value.ToString("0.0", CultureInfo.InvariantCulture) + " MiB";

    private static string Percent(double now, double before) => before <= 0 ? "n/a" : ((now / before - 1) * 100).ToString("+0;-0;0", CultureInfo.InvariantCulture) + " %";
}

/// <summary>The memory figures as printed, and what is over its bound when the check is on.</summary>
internal sealed record MemoryComparison(string Text, IReadOnlyList<string> Violations);
