using System.Diagnostics;
using System.Text;

namespace ControlPlane.FunctionalTests;

/// <summary>A child process whose output lines the test can await; killed (tree and all) on dispose.</summary>
public sealed class ManagedProcess : IDisposable
{
    private readonly Process process;
    private readonly List<string> lines = [];
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Found)> waiters = [];
    private readonly TaskCompletionSource<int> exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ManagedProcess(string name, Process process)
    {
        Name = name;
        this.process = process;
    }

    public string Name { get; }

    public int Pid => process.Id;

    public Task<int> Exited => exited.Task;

    public string Output
    {
        get
        {
            lock (lines)
            {
                return string.Join('\n', lines);
            }
        }
    }

    public static ManagedProcess Start(string name, string executable, IEnumerable<string> args, IDictionary<string, string>? environment = null)
    {
        if (!File.Exists(executable))
        {
            throw new InvalidOperationException($"{executable} does not exist; build the solution first (dotnet build ControlPlane.sln).");
        }

        var startInfo = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            startInfo.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            startInfo.Environment[key] = value;
        }

        var process = new Process { StartInfo = startInfo, EnableRaisingEvents = true };
        var managed = new ManagedProcess(name, process);
        process.OutputDataReceived += (_, e) => managed.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => managed.OnLine(e.Data);
        process.Exited += (_, _) => managed.exited.TrySetResult(process.ExitCode);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return managed;
    }

    /// <summary>The first output line (past or future) matching <paramref name="match"/>; fails after the timeout or when the process exits first.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, string what)
    {
        TaskCompletionSource<string> found;
        lock (lines)
        {
            var existing = lines.FirstOrDefault(match);
            if (existing is not null)
            {
                return existing;
            }

            found = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            waiters.Add((match, found));
        }

        var winner = await Task.WhenAny(found.Task, exited.Task, Task.Delay(timeout));
        if (winner == found.Task)
        {
            return await found.Task;
        }

        var why = winner == exited.Task ? $"exited with code {await exited.Task}" : $"did not print it within {timeout}";
        throw new Xunit.Sdk.XunitException($"{Name} was expected to print {what} but {why}. Output:\n{Output}");
    }

    /// <summary>Sends a signal (e.g. "KILL", "STOP", "CONT", "TERM") with kill(1).</summary>
    public void Signal(string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-" + signal, Pid.ToString(System.Globalization.CultureInfo.InvariantCulture) }, UseShellExecute = false })!;
        kill.WaitForExit();
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        List<TaskCompletionSource<string>> matched = [];
        lock (lines)
        {
            lines.Add(line);
            for (var i = waiters.Count - 1; i >= 0; i--)
            {
                if (waiters[i].Match(line))
                {
                    matched.Add(waiters[i].Found);
                    waiters.RemoveAt(i);
                }
            }
        }

        foreach (var tcs in matched)
        {
            tcs.TrySetResult(line);
        }
    }

    public void Dispose()
    {
        try
        {
            if (!process.HasExited)
            {
                Signal("CONT");
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        process.Dispose();
    }
}
