using System.Globalization;
using System.Text;
using ControlPlane.Tests.Support;

namespace ControlPlane.Soak;

/// <summary>A live process of a step: which attempt it belongs to and which agent's work root it runs in.</summary>
internal sealed record StepProcess(int Pid, string RunId, string StepId, int Attempt, string Agent, string Command)
{
    public override string ToString() => $"pid {Pid} attempt {Attempt} on {Agent} ({Command})";
}

/// <summary>
/// Finds the step processes of this soak in /proc: a process carries the soak's id in its environment (inherited from
/// the agent) and CP_RUN_ID/CP_STEP_ID/CP_ATTEMPT from the shell framework; its children (sleep) inherit all of them.
/// While the soak runs it scans once a second and reports every step seen with two attempts alive at once: a process
/// that outlived its attempt beside the one that replaced it.
/// </summary>
internal sealed class StepProcesses(string soakId, string workRoot, Journal journal)
{
    private readonly HashSet<string> _reported = new(StringComparer.Ordinal);

    /// <summary>Scans taken so far.</summary>
    public int Scans { get; private set; }

    /// <summary>Steps seen with two attempts' processes alive at once, with what was seen the first time.</summary>
    public List<(string RunId, string StepId, string Detail)> Overlaps { get; } = [];

    /// <summary>Every live step process of this soak.</summary>
    public List<StepProcess> Scan()
    {
        var found = new List<StepProcess>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            Dictionary<string, string> env;
            try
            {
                env = ParseEnvironment(File.ReadAllBytes(Path.Combine(dir, "environ")));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Gone since the listing, or another user's.
                continue;
            }

            if (env.GetValueOrDefault(SoakCluster.SoakIdVariable) != soakId || !env.TryGetValue("CP_RUN_ID", out var runId)
                || !ProcessProbe.IsRunning(pid))
            {
                continue;
            }

            var attempt = int.TryParse(env.GetValueOrDefault("CP_ATTEMPT"), NumberStyles.None, CultureInfo.InvariantCulture, out var a) ? a : 0;
            found.Add(new StepProcess(pid, runId, env.GetValueOrDefault("CP_STEP_ID", "?"), attempt, AgentOf(env.GetValueOrDefault("CP_WORK_DIR", "")), CommandOf(pid)));
        }

        return found;
    }

    /// <summary>Scans once a second until <paramref name="stop"/>, recording each step seen with two attempts alive.</summary>
    public async Task WatchAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var processes = Scan();
            Scans++;
            foreach (var step in processes.GroupBy(p => (p.RunId, p.StepId)))
            {
                var attempts = step.Select(p => p.Attempt).Distinct().Order().ToList();
                var key = $"{step.Key.RunId}/{step.Key.StepId}/{string.Join(",", attempts)}";
                if (attempts.Count > 1 && _reported.Add(key))
                {
                    var detail = $"attempts {string.Join(" and ", attempts)} alive at once: {string.Join("; ", step.OrderBy(p => p.Attempt).Select(p => p.ToString()))}";
                    Overlaps.Add((step.Key.RunId, step.Key.StepId, detail));
                    journal.Info($"OVERLAP {step.Key.RunId}/{step.Key.StepId}: {detail}");
                }
            }

            try
            {
                await Task.Delay(TimeSpan.FromSeconds(1), stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static Dictionary<string, string> ParseEnvironment(byte[] bytes)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in Encoding.UTF8.GetString(bytes).Split('\0', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = entry.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                env[entry[..eq]] = entry[(eq + 1)..];
            }
        }

        return env;
    }

    // The work directory lies under <soak>/work/<agent id>/...
    private string AgentOf(string workDir)
    {
        if (!workDir.StartsWith(workRoot, StringComparison.Ordinal))
        {
            return "?";
        }

        var rest = workDir[workRoot.Length..].TrimStart('/');
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        return slash > 0 ? rest[..slash] : rest;
    }

    private static string CommandOf(int pid)
    {
        try
        {
            var command = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim();
            return command.Length > 80 ? command[..80] + "..." : command;
        }
        catch (IOException)
        {
            return "?";
        }
    }
}
