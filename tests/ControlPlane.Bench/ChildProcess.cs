using System.Diagnostics;
using System.Globalization;

namespace ControlPlane.Bench;

/// <summary>A process the driver started: its output echoed with a prefix, CPU and peak RSS read from /proc.</summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private static readonly double TicksPerSecond = 100.0; // USER_HZ on Linux
    private readonly Process process;
    private readonly TaskCompletionSource<string> matched = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string? waitFor;

    private ChildProcess(Process process, string? waitFor)
    {
        this.process = process;
        this.waitFor = waitFor;
    }

    public int Id => process.Id;

    public static ChildProcess Start(string name, IEnumerable<string> args, IDictionary<string, string>? env = null, string? waitFor = null)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in env ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {name}");
        var child = new ChildProcess(process, waitFor);
        process.OutputDataReceived += (_, e) => child.OnLine(name, e.Data);
        process.ErrorDataReceived += (_, e) => child.OnLine(name, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>The first output line containing the awaited text.</summary>
    public Task<string> Matched => matched.Task;

    /// <summary>CPU seconds (user + system) the process has used so far.</summary>
    public double CpuSeconds()
    {
        var stat = File.ReadAllText($"/proc/{process.Id}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // After the command name: field 14 (utime) and 15 (stime) of proc(5) are at 11 and 12 here.
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
    }

    /// <summary>Peak resident set size in MiB (VmHWM).</summary>
    public double PeakRssMiB()
    {
        var line = File.ReadLines($"/proc/{process.Id}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    }

    /// <summary>SIGTERM (agents drain, the scheduler shuts down gracefully), then SIGKILL after 15 s.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            using var terminate = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]);
            await terminate.WaitForExitAsync().ConfigureAwait(false);
            try
            {
                await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(15)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync().ConfigureAwait(false);
            }
        }

        process.Dispose();
    }

    private void OnLine(string name, string? line)
    {
        if (line is null)
        {
            matched.TrySetException(new InvalidOperationException($"{name} exited before printing '{waitFor}'"));
            return;
        }

        if (waitFor is not null && line.Contains(waitFor, StringComparison.Ordinal))
        {
            matched.TrySetResult(line);
        }

        Console.Error.WriteLine($"[{name}] {line}");
    }
}
