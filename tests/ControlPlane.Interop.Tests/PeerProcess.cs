using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace ControlPlane.Interop.Tests;

/// <summary>A child process whose combined output is captured, for servers and per-case clients.</summary>
public sealed partial class PeerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<int> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // stdout EOF, stderr EOF and the Exited event: all three mean every line is captured and the exit code is known.
    private int _pendingEndSignals = 3;

    private PeerProcess(string description, ProcessStartInfo startInfo)
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
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static PeerProcess Start(string description, string fileName, string workingDirectory, params string[] arguments)
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

        // Keep child processes quiet and deterministic.
        startInfo.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        startInfo.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        var peer = new PeerProcess(description, startInfo);
        peer._process.Start();
        peer._process.BeginOutputReadLine();
        peer._process.BeginErrorReadLine();
        return peer;
    }

    /// <summary>Waits for the "listening on 127.0.0.1:PORT" line and returns the port.</summary>
    public async Task<int> WaitForListeningAsync(TimeSpan timeout)
    {
        var exited = _exited.Task;
        var done = await Task.WhenAny(_listening.Task, exited, Task.Delay(timeout)).ConfigureAwait(false);
        if (done == _listening.Task)
        {
            return await _listening.Task.ConfigureAwait(false);
        }

        var why = done == exited ? $"exited with code {_process.ExitCode}" : $"did not print its listening line within {timeout.TotalSeconds:0} s";
        throw new InvalidOperationException($"{Description} {why}. Output:\n{Output}");
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

        lock (_output)
        {
            _output.AppendLine(line);
        }

        var match = ListeningLine().Match(line);
        if (match.Success)
        {
            _listening.TrySetResult(int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
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
