using System.Diagnostics;
using System.Text;
using System.Threading.Channels;

namespace ControlPlane.Cli.Tests;

/// <summary>A real process (cpctl or an example agent) with its stdout read line by line as it arrives.</summary>
internal sealed class CpctlProcess : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    private readonly Process process;
    private readonly Channel<string> lines = Channel.CreateUnbounded<string>();
    private readonly StringBuilder output = new();
    private readonly StringBuilder error = new();
    private readonly Task pump;

    private CpctlProcess(Process process)
    {
        this.process = process;
        pump = PumpAsync();
        _ = Task.Run(async () =>
        {
            var text = await process.StandardError.ReadToEndAsync();
            lock (error)
            {
                error.Append(text);
            }
        });
    }

    public int Id => process.Id;

    public bool HasExited => process.HasExited;

    public string Output
    {
        get
        {
            lock (output)
            {
                return output.ToString();
            }
        }
    }

    public string Error
    {
        get
        {
            lock (error)
            {
                return error.ToString();
            }
        }
    }

    /// <summary>Starts <c>dotnet DLL args</c>, the DLL from the test's output folder (cpctl.dll, DotnetAgent.dll).</summary>
    public static CpctlProcess Start(string dll, IEnumerable<string> args, string? workingDirectory = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? AppContext.BaseDirectory,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, dll));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return new CpctlProcess(Process.Start(start)!);
    }

    public static CpctlProcess Cpctl(params string[] args) => Start("cpctl.dll", args);

    /// <summary>Runs cpctl to its end; returns exit code and stdout.</summary>
    public static async Task<(int ExitCode, string Out, string Error)> RunAsync(params string[] args)
    {
        await using var cpctl = Cpctl(args);
        var exit = await cpctl.WaitForExitAsync();
        return (exit, cpctl.Output, cpctl.Error);
    }

    /// <summary>The first stdout line (from the start) matching <paramref name="predicate"/>; fails after <see cref="Timeout"/> or at exit.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> predicate)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        try
        {
            await foreach (var line in lines.Reader.ReadAllAsync(timeout.Token))
            {
                if (predicate(line))
                {
                    return line;
                }
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"no matching line within {Timeout}; stdout so far:\n{Output}\nstderr:\n{Error}");
        }

        throw new InvalidOperationException($"the process exited without printing a matching line; stdout:\n{Output}\nstderr:\n{Error}");
    }

    public async Task<int> WaitForExitAsync()
    {
        using var timeout = new CancellationTokenSource(Timeout);
        await process.WaitForExitAsync(timeout.Token);
        await pump.WaitAsync(timeout.Token);
        return process.ExitCode;
    }

    /// <summary>Sends a signal the way a terminal or a supervisor does (Ctrl+C is SIGINT).</summary>
    public async Task SignalAsync(string signal)
    {
        using var kill = Process.Start("kill", ["-s", signal, process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        await kill.WaitForExitAsync();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -s {signal} {process.Id} failed with exit code {kill.ExitCode}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        process.Dispose();
    }

    private async Task PumpAsync()
    {
        while (await process.StandardOutput.ReadLineAsync() is { } line)
        {
            lock (output)
            {
                output.Append(line).Append('\n');
            }

            lines.Writer.TryWrite(line);
        }

        lines.Writer.TryComplete();
    }
}
