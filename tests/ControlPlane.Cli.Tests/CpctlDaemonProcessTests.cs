using System.Runtime.InteropServices;
using ControlPlane.Agent;
using ControlPlane.Scheduler.Hosting;
using ControlPlane.Tests.Support;
using Xunit;

namespace ControlPlane.Cli.Tests;

/// <summary><c>cpctl server</c> and <c>cpctl agent</c> as real processes: the daemons' settings, and signals at any moment of their shutdown.</summary>
public sealed class CpctlDaemonProcessTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cpctl-daemon-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task Server_SigtermTwiceThenAgainAfterStopped_ExitsZeroWithoutUnhandledException()
    {
        // Several rounds: the signal that used to crash it had to land in the last milliseconds of the process.
        for (var round = 0; round < 3; round++)
        {
            await using var server = CpctlProcess.Cpctl("server", "--listen", "127.0.0.1:0");
            await server.WaitForLineAsync(l => l.StartsWith("scheduler listening on ", StringComparison.Ordinal), CpctlProcess.Timeout, "the expected line");

            // The second lands in the shutdown the first began, or finds the process gone: an idle scheduler stops
            // within tens of milliseconds, about the time a spawned kill takes.
            await server.SignalAsync("TERM");
            try
            {
                await server.SignalAsync("TERM");
            }
            catch (InvalidOperationException) when (server.Exited.IsCompleted)
            {
            }
            await server.WaitForLineAsync(l => l == "scheduler stopped", CpctlProcess.Timeout, "the expected line");
            await SignalUntilExitedAsync(server);
            var exitCode = await server.Exited.WaitAsync(CpctlProcess.Timeout);

            Assert.True(exitCode == 0, $"round {round}: exit code {exitCode}; stderr:\n{server.StandardError}");
            Assert.DoesNotContain("Unhandled exception", server.Output + server.StandardError, StringComparison.Ordinal);
            Assert.DoesNotContain(nameof(ObjectDisposedException), server.Output + server.StandardError, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Agent_SigtermTwiceThenAgainAfterStopped_ExitsZeroWithoutUnhandledException()
    {
        // No scheduler: the agent keeps retrying, and a drain with nothing running ends at once.
        await using var agent = CpctlProcess.Cpctl("agent", "--scheduler", "http://127.0.0.1:1", "--agent-id", "lonely", "--work-root", Path.Combine(_dir.FullName, "work"));
        await agent.WaitForLineAsync(l => l.StartsWith("agent lonely connecting to ", StringComparison.Ordinal), CpctlProcess.Timeout, "the expected line");

        await agent.SignalAsync("TERM");
        await agent.SignalAsync("TERM");
        await agent.WaitForLineAsync(l => l == "agent lonely stopped", CpctlProcess.Timeout, "the expected line");
        await SignalUntilExitedAsync(agent);
        var exitCode = await agent.Exited.WaitAsync(CpctlProcess.Timeout);

        Assert.True(exitCode == 0, $"exit code {exitCode}; stderr:\n{agent.StandardError}");
        Assert.DoesNotContain("Unhandled exception", agent.Output + agent.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_SettingsFromConfigFileEnvironmentAndFlags_SameSchemeAsTheDaemon()
    {
        var config = Path.Combine(_dir.FullName, "scheduler.json");
        await File.WriteAllTextAsync(config, """{ "Listen": "nonsense", "SchedulerId": "from-file", "LogLevel": "Error" }""");
        var environment = new Dictionary<string, string> { ["CP_CONFIG"] = config, ["CP_LOG_LEVEL"] = "Information" };

        // The file's Listen would fail validation, so starting at all shows the flag won; its log level would hide the line below.
        await using var server = CpctlProcess.Start("cpctl.dll", ["server", "--listen", "127.0.0.1:0"], environment: environment);
        await server.WaitForLineAsync(l => l.StartsWith("scheduler listening on ", StringComparison.Ordinal), CpctlProcess.Timeout, "the expected line");
        await server.SignalAsync("TERM");

        Assert.Equal(0, await server.Exited.WaitAsync(CpctlProcess.Timeout));
        Assert.Contains("Scheduler from-file listening on", server.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DaemonHelp_CpctlAndDaemon_ListTheSameSettings()
    {
        var server = await CpctlProcess.RunAsync("server", "--help");
        var agent = await CpctlProcess.RunAsync("agent", "--help");

        Assert.Equal(0, server.ExitCode);
        Assert.Equal(0, agent.ExitCode);
        Assert.Equal(SchedulerHost.Settings.Usage("cpctl server"), server.Out.TrimEnd('\n'));
        Assert.Equal(AgentHostBuilder.Settings.Usage("cpctl agent"), agent.Out.TrimEnd('\n'));
    }

    private const int SigTerm = 15;

    // The crash window is the process's last milliseconds, so signal as fast as the kernel takes them, not at the pace of a kill(1) per signal.
    private static async Task SignalUntilExitedAsync(ObservedProcess process)
    {
        using var timeout = new CancellationTokenSource(CpctlProcess.Timeout);
        while (!process.Exited.IsCompleted && !timeout.IsCancellationRequested)
        {
            _ = kill(process.Id, SigTerm);
            await Task.Yield();
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}
