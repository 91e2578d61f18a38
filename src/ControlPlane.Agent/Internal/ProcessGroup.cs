using System.Runtime.InteropServices;

namespace ControlPlane.Agent.Internal;

/// <summary>Signals and inspects a Linux process group, so a step's whole process tree can be stopped.</summary>
internal static partial class ProcessGroup
{
    public const int SigKill = 9;
    public const int SigTerm = 15;
    private const int Esrch = 3;

    /// <summary>Sends the signal to every process of the group; false when the group no longer exists.</summary>
    public static bool SignalGroup(int pgid, int signal) => Kill(-pgid, signal) == 0 || Marshal.GetLastPInvokeError() != Esrch;

    /// <summary>Sends the signal to one process; false when it no longer exists.</summary>
    public static bool SignalProcess(int pid, int signal) => Kill(pid, signal) == 0 || Marshal.GetLastPInvokeError() != Esrch;

    /// <summary>
    /// True while a process of the group is still running. Zombies do not count: an orphan whose
    /// parent died is reaped by init, which in a container may never happen.
    /// </summary>
    public static bool HasLiveMembers(int pgid)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            var name = Path.GetFileName(dir);
            if (name.Length == 0 || !char.IsAsciiDigit(name[0]))
            {
                continue;
            }

            if (ReadStat(dir) is { } stat && stat.ProcessGroup == pgid && stat.State is not ('Z' or 'X'))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True while the process runs (exists and is not a zombie).</summary>
    public static bool IsRunning(int pid) => ReadStat("/proc/" + pid) is { } stat && stat.State is not ('Z' or 'X');

    /// <summary>The process group of a running process; null when it is gone.</summary>
    public static int? GetProcessGroup(int pid) => ReadStat("/proc/" + pid)?.ProcessGroup;

    private static (char State, int ProcessGroup)? ReadStat(string procDir)
    {
        try
        {
            // Format: "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses, so parse after the last ')'.
            var text = File.ReadAllText(Path.Combine(procDir, "stat"));
            var close = text.LastIndexOf(')');
            if (close < 0)
            {
                return null;
            }

            var fields = text[(close + 2)..].Split(' ', 4);
            return fields.Length >= 3 && int.TryParse(fields[2], out var pgrp) ? (fields[0][0], pgrp) : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
