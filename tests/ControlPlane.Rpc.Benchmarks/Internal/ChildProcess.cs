using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace ControlPlane.Rpc.Benchmarks.Internal;

/// <summary>A peer process (server or grpc-js bench client) with captured output.</summary>
internal sealed partial class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<int> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _pendingEndSignals = 3; // stdout EOF, stderr EOF, Exited

    private ChildProcess(string name, ProcessStartInfo startInfo)
    {
        Name = name;
        _process = new Process { StartInfo = startInfo, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) => OnLine(e.Data, isStdout: true);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data, isStdout: false);
        _process.Exited += (_, _) => SignalEnd();
    }

    public string Name { get; }

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

    public string LastStdoutLine { get; private set; } = string.Empty;

    public int ExitCode => _process.ExitCode;

    public static ChildProcess Start(string name, string workingDirectory, string fileName, params string[] arguments)
    {
        var info = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }

        var child = new ChildProcess(name, info);
        child._process.Start();
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        return child;
    }

    public async Task<int> WaitForListeningAsync(TimeSpan timeout)
    {
        var done = await Task.WhenAny(_listening.Task, _ended.Task, Task.Delay(timeout));
        if (done == _listening.Task)
        {
            return await _listening.Task;
        }

        throw new InvalidOperationException($"{Name} did not report 'listening on 127.0.0.1:PORT' (exited or timed out after {timeout.TotalSeconds:0} s). Output:\n{Output}");
    }

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        var done = await Task.WhenAny(_ended.Task, Task.Delay(timeout));
        return done == _ended.Task;
    }

    public async ValueTask DisposeAsync()
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
            // Already exited.
        }

        await Task.WhenAny(_ended.Task, Task.Delay(TimeSpan.FromSeconds(10)));
        _process.Dispose();
    }

    private void OnLine(string? line, bool isStdout)
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

        if (isStdout)
        {
            LastStdoutLine = line;
        }

        var match = ListeningLine().Match(line);
        if (match.Success)
        {
            _listening.TrySetResult(int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture));
        }
    }

    private void SignalEnd()
    {
        if (Interlocked.Decrement(ref _pendingEndSignals) == 0)
        {
            _ended.TrySetResult();
        }
    }

    [GeneratedRegex(@"listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListeningLine();
}
