using System.Globalization;

namespace ControlPlane.Agent.Tests;

/// <summary>Looks processes up in /proc; zombies (dead, not yet reaped by init) count as gone.</summary>
public static class ProcessProbe
{
    public static bool IsRunning(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return false;
        }

        var state = stat[(stat.LastIndexOf(')') + 2)..][0];
        return state is not ('Z' or 'X');
    }

    /// <summary>Parses "child &lt;pid&gt;" log lines that test scripts print.</summary>
    public static int ParseChildPid(string line) => int.Parse(line.Split(' ')[1], CultureInfo.InvariantCulture);
}
