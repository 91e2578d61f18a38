using System.Globalization;

namespace ControlPlane.Tests.Support;

/// <summary>Reads processes by pid from /proc: whether one still runs, and what it has used.</summary>
public static class ProcessProbe
{
    // USER_HZ on Linux: /proc/PID/stat counts CPU time in these ticks.
    private const double TicksPerSecond = 100.0;

    /// <summary>
    /// Whether <paramref name="pid"/> runs; zombies (dead, not yet reaped) count as gone. When <paramref name="name"/> is
    /// given, the process's command name must match too, so a pid the kernel handed to another process does not count.
    /// </summary>
    public static bool IsRunning(int pid, string? name = null)
    {
        if (ReadStat(pid) is not { } stat)
        {
            return false;
        }

        return stat.State is not ('Z' or 'X') && (name is null || stat.Name == name);
    }

    /// <summary>CPU seconds (user + system) the process has used so far.</summary>
    public static double CpuSeconds(int pid)
    {
        var stat = ReadStat(pid) ?? throw new InvalidOperationException($"process {pid} is gone");

        // proc(5) numbers utime and stime 14 and 15; after the command name and the state they are the 12th and 13th.
        return (long.Parse(stat.Fields[11], CultureInfo.InvariantCulture) + long.Parse(stat.Fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
    }

    /// <summary>Peak resident set size in MiB (VmHWM).</summary>
    public static double PeakRssMiB(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    }

    /// <summary>Parses the "child &lt;pid&gt;" lines test scripts print about the processes they start.</summary>
    public static int ParseChildPid(string line) => int.Parse(line.Split(' ')[1], CultureInfo.InvariantCulture);

    // "PID (NAME) STATE FIELD4 ...": NAME may hold spaces and parentheses, so it runs to the last ')'.
    private static (string Name, char State, string[] Fields)? ReadStat(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }

        var open = stat.IndexOf('(', StringComparison.Ordinal);
        var close = stat.LastIndexOf(')');
        var rest = stat[(close + 2)..].Split(' ');
        return (stat[(open + 1)..close], rest[0][0], rest);
    }
}
