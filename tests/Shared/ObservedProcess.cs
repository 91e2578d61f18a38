using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace ControlPlane.Tests.Support;

/// <summary>
/// The one way tests and benchmarks start a child process: stdout and stderr captured line by line and awaitable,
/// signals sent from outside as a terminal or supervisor would, and the process killed, tree and all, on dispose.
/// </summary>
public sealed class ObservedProcess : IAsyncDisposable
{
    private const string ListeningPrefix = "scheduler listening on ";

    private readonly Process _process;
    private readonly TextWriter? _echo;
    private readonly object _gate = new();
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _standardOutput = new();
    private readonly StringBuilder _standardError = new();
    private readonly List<string> _lines = [];
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Found)> _waiters = [];
    private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // stdout EOF, stderr EOF and the Exited event: all three mean every line is captured and the exit code is known.
    private int _pendingEndSignals = 3;

    private ObservedProcess(string description, ProcessStartInfo startInfo, TextWriter? echo)
    {
        Description = description;
        _echo = echo;
        _process = new Process { StartInfo = startInfo, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) => OnLine(e.Data, _standardOutput);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data, _standardError);
        _process.Exited += (_, _) => SignalEnd();
    }

    public string Description { get; }

    /// <summary>The process id.</summary>
    public int Id => _process.Id;

    /// <summary>Everything the process printed so far, stdout and stderr interleaved as the lines arrived.</summary>
    public string Output => Read(_output);

    /// <summary>What the process printed on stdout so far.</summary>
    public string StandardOutput => Read(_standardOutput);

    /// <summary>What the process printed on stderr so far.</summary>
    public string StandardError => Read(_standardError);

    /// <summary>Completes with the exit code once the process has exited and all its output is captured.</summary>
    public Task<int> Exited => _exited.Task;

    /// <summary>
    /// Starts <paramref name="fileName"/> with stdin, stdout and stderr redirected. <paramref name="echo"/>, when given,
    /// receives every line as "[description] line" as well (benchmarks show their children's output that way).
    /// </summary>
    public static ObservedProcess Start(
        string description,
        string fileName,
        IEnumerable<string> arguments,
        string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null,
        TextWriter? echo = null)
    {
        // A runner started in the background (nohup, `cmd &` in a script) ignores SIGINT, and children inherit that, so a
        // test's Ctrl+C would never arrive: start them with SIGINT's default action, as a terminal would.
        var restoreInterrupt = InterruptIgnored();
        var startInfo = new ProcessStartInfo(restoreInterrupt ? "/usr/bin/env" : fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            // Redirected (and left open) so no child ever reads the test runner's own stdin.
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (workingDirectory is not null)
        {
            startInfo.WorkingDirectory = workingDirectory;
        }

        if (restoreInterrupt)
        {
            startInfo.ArgumentList.Add("--default-signal=INT");
            startInfo.ArgumentList.Add(fileName);
        }

        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        // Keep child processes quiet and the checkout clean.
        startInfo.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        startInfo.Environment["PYTHONDONTWRITEBYTECODE"] = "1";

        // Unbuffered, so a client killed on timeout still shows every line it printed.
        startInfo.Environment["PYTHONUNBUFFERED"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            startInfo.Environment[name] = value;
        }

        var observed = new ObservedProcess(description, startInfo, echo);
        try
        {
            observed._process.Start();
        }
        catch
        {
            observed._process.Dispose();
            throw;
        }

        observed._process.BeginOutputReadLine();
        observed._process.BeginErrorReadLine();
        return observed;
    }

    /// <summary>The first output line (past or future, stdout or stderr) matching <paramref name="match"/>; throws with the output when the process exits first or the timeout passes.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, string what)
    {
        TaskCompletionSource<string> found;
        lock (_gate)
        {
            if (_lines.FirstOrDefault(match) is { } existing)
            {
                return existing;
            }

            found = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((match, found));
        }

        var done = await Task.WhenAny(found.Task, _exited.Task, Task.Delay(timeout)).ConfigureAwait(false);
        if (done == found.Task)
        {
            return await found.Task.ConfigureAwait(false);
        }

        var why = done == _exited.Task ? $"exited with code {await _exited.Task.ConfigureAwait(false)}" : $"did not print it within {timeout.TotalSeconds:0} s";
        throw new InvalidOperationException($"{Description} was expected to print {what} but {why}. Output:\n{Output}");
    }

    /// <summary>Waits for the "scheduler listening on URL" line the scheduler hosts (cp-scheduler, cpctl server) print once they accept calls; returns the URL.</summary>
    public async Task<string> WaitForListeningAsync(TimeSpan timeout)
    {
        var line = await WaitForLineAsync(l => l.StartsWith(ListeningPrefix, StringComparison.Ordinal), timeout, $"its \"{ListeningPrefix}URL\" line").ConfigureAwait(false);
        return line[ListeningPrefix.Length..].Trim();
    }

    /// <summary>Waits for the process to exit; kills it and returns null when the timeout passes first.</summary>
    public async Task<int?> WaitForExitAsync(TimeSpan timeout)
    {
        var done = await Task.WhenAny(_exited.Task, Task.Delay(timeout)).ConfigureAwait(false);
        if (done != _exited.Task)
        {
            Kill();
            return null;
        }

        return await _exited.Task.ConfigureAwait(false);
    }

    /// <summary>Sends a signal by name ("INT", "TERM", "KILL", "STOP", "CONT") with kill(1), as a terminal or a supervisor does.</summary>
    public async Task SignalAsync(string signal)
    {
        await using var kill = Start("kill", "kill", ["-s", signal, Id.ToString(CultureInfo.InvariantCulture)]);
        var exitCode = await kill.WaitForExitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"kill -s {signal} {Id} ({Description}) failed ({(exitCode is null ? "timed out" : $"exit code {exitCode}")}): {kill.Output}");
        }
    }

    /// <summary>SIGTERM, so the process can shut down in its own order; killed, tree and all, when it has not exited within <paramref name="grace"/>. Returns the exit code, or null when it had to be killed.</summary>
    public async Task<int?> StopAsync(TimeSpan grace)
    {
        if (!_process.HasExited)
        {
            try
            {
                await SignalAsync("TERM").ConfigureAwait(false);
            }
            catch (InvalidOperationException) when (_process.HasExited)
            {
                // It exited between the check and the signal.
            }
        }

        return await WaitForExitAsync(grace).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        await Task.WhenAny(_exited.Task, Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false);
        _process.Dispose();
    }

    private void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private string Read(StringBuilder text)
    {
        lock (_gate)
        {
            return text.ToString();
        }
    }

    private void OnLine(string? line, StringBuilder stream)
    {
        if (line is null)
        {
            SignalEnd();
            return;
        }

        List<TaskCompletionSource<string>> matched = [];
        lock (_gate)
        {
            _output.AppendLine(line);
            stream.AppendLine(line);
            _lines.Add(line);
            for (var i = 0; i < _waiters.Count; i++)
            {
                if (_waiters[i].Match(line))
                {
                    matched.Add(_waiters[i].Found);
                    _waiters.RemoveAt(i--);
                }
            }
        }

        _echo?.WriteLine($"[{Description}] {line}");
        foreach (var found in matched)
        {
            found.TrySetResult(line);
        }
    }

    private void SignalEnd()
    {
        if (Interlocked.Decrement(ref _pendingEndSignals) == 0)
        {
            _exited.TrySetResult(_process.ExitCode);
        }
    }

    /// <summary>Whether this process ignores SIGINT (bit 2 of SigIgn in /proc/self/status).</summary>
    private static bool InterruptIgnored()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return line is not null
            && (ulong.Parse(line["SigIgn:".Length..].Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture) & 0x2) != 0;
    }
}
