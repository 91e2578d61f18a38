using ControlPlane.Tests.Support;

namespace ControlPlane.Cli.Tests;

/// <summary>cpctl, or another program built into the test's output folder (the DotnetAgent example), run as a user runs it: <c>dotnet DLL args</c>.</summary>
internal static class CpctlProcess
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    /// <summary>Starts <c>dotnet DLL args</c>, the DLL from the test's output folder (cpctl.dll, DotnetAgent.dll), in that folder unless told otherwise.</summary>
    public static ObservedProcess Start(string dll, IEnumerable<string> args, string? workingDirectory = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        string[] arguments = [.. args];
        return ObservedProcess.Start(
            $"{Path.GetFileNameWithoutExtension(dll)} {string.Join(' ', arguments)}",
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, dll), .. arguments],
            workingDirectory ?? AppContext.BaseDirectory,
            environment);
    }

    public static ObservedProcess Cpctl(params string[] args) => Start("cpctl.dll", args);

    /// <summary>Runs cpctl to its end; returns its exit code, stdout and stderr.</summary>
    public static Task<(int ExitCode, string Out, string Error)> RunAsync(params string[] args) => RunAsync(environment: null, args);

    /// <summary>Runs cpctl to its end with extra environment variables; returns its exit code, stdout and stderr.</summary>
    public static async Task<(int ExitCode, string Out, string Error)> RunAsync(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        await using var cpctl = Start("cpctl.dll", args, environment: environment);
        var exitCode = await cpctl.WaitForExitAsync(Timeout)
            ?? throw new TimeoutException($"{cpctl.Description} did not exit within {Timeout.TotalSeconds:0} s and was killed. Output:\n{cpctl.Output}");
        return (exitCode, cpctl.StandardOutput, cpctl.StandardError);
    }
}
