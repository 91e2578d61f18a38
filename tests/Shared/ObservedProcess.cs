using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace ControlPlane.Tests.Shared;

/// <summary>A child process whose combined output is captured and awaitable line by line; killed, tree and all, on dispose.</summary>
public sealed partial class ObservedProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly List<string> _lines = [];
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Found)> _waiters = [];
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // stdout EOF, stderr EOF and the Exited event: all three mean every line is captured and the exit code is known.
    private int _pendingEndSignals = 3;

    private ObservedProcess(string description, ProcessStartInfo startInfo)
    {
        Description = description;
        _process = new Process { StartInfo = startInfo, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        _process.Exited += (_, _) => SignalEnd();
    }

    public string Description { get; }

    /// <summary>Everything the process printed so far (stdout and stderr interleaved).</summary>
    public string Output
    {
        get
        {
            lock (_lines)
            {
                return _output.ToString();
            }
        }
    }

    public static ObservedProcess Start(string description, string fileName, string workingDirectory, params string[] arguments) =>
        Start(description, fileName, workingDirectory, new Dictionary<string, string>(), arguments);

    /// <summary>Starts <paramref name="fileName"/> with <paramref name="environment"/> added to this process's environment.</summary>
    public static ObservedProcess Start(string description, string fileName, string workingDirectory, IReadOnlyDictionary<string, string> environment, params string[] arguments)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment)
        {
            startInfo.Environment[name] = value;
        }

        // Keep child processes quiet and the checkout clean.
        startInfo.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        startInfo.Environment["PYTHONDONTWRITEBYTECODE"] = "1";

        // Unbuffered, so a client killed on timeout still shows every line it printed.
        startInfo.Environment["PYTHONUNBUFFERED"] = "1";
        var observed = new ObservedProcess(description, startInfo);
        observed._process.Start();
        observed._process.BeginOutputReadLine();
        observed._process.BeginErrorReadLine();
        return observed;
    }

    /// <summary>The first output line (past or future) matching <paramref name="match"/>; throws with the output when the process exits first or the timeout passes.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, string what)
    {
        TaskCompletionSource<string> found;
        lock (_lines)
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

        var why = done == _exited.Task ? $"exited with code {_process.ExitCode}" : $"did not print it within {timeout.TotalSeconds:0} s";
        throw new InvalidOperationException($"{Description} was expected to print {what} but {why}. Output:\n{Output}");
    }

    /// <summary>Waits for the "listening on 127.0.0.1:PORT" line a server prints once ready, and returns the port.</summary>
    public async Task<int> WaitForListeningAsync(TimeSpan timeout)
    {
        var line = await WaitForLineAsync(l => ListeningLine().IsMatch(l), timeout, "its \"listening on 127.0.0.1:PORT\" line").ConfigureAwait(false);
        return int.Parse(ListeningLine().Match(line).Groups[1].Value, CultureInfo.InvariantCulture);
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

        return _process.ExitCode;
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

    private void OnLine(string? line)
    {
        if (line is null)
        {
            SignalEnd();
            return;
        }

        List<TaskCompletionSource<string>> matched = [];
        lock (_lines)
        {
            _output.AppendLine(line);
            _lines.Add(line);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Match(line))
                {
                    matched.Add(_waiters[i].Found);
                    _waiters.RemoveAt(i);
                }
            }
        }

        foreach (var found in matched)
        {
            found.TrySetResult(line);
        }
    }

    private void SignalEnd()
    {
        if (Interlocked.Decrement(ref _pendingEndSignals) == 0)
        {
            _exited.TrySetResult();
        }
    }

    [GeneratedRegex(@"listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListeningLine();
}
