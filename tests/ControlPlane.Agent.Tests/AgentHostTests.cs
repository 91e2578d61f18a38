using ControlPlane.Agent.Internal;
using ControlPlane.Tests.Support;
using ControlPlane.V1;

namespace ControlPlane.Agent.Tests;

public sealed class AgentHostTests : IAsyncLifetime
{
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(60);
    private readonly TempDirectory _dir = new();
    private FakeScheduler _scheduler = null!;

    public async Task InitializeAsync() => _scheduler = await FakeScheduler.StartAsync();

    public async Task DisposeAsync()
    {
        await _scheduler.DisposeAsync();
        _dir.Dispose();
    }

    [Fact]
    public async Task Host_SigtermTwice_DrainsRunningStepThenExitsZero()
    {
        var release = Path.Combine(_dir.Path, "release");
        await using var host = AgentHostProcess.Start("--scheduler", _scheduler.Address, "--agent-id", "host-1", "--slots", "1", "--queues", "default,gpu", "--work-root", Path.Combine(_dir.Path, "work"));
        var connection = await _scheduler.NextConnectionAsync();
        var hello = await connection.HelloAsync();
        await connection.WelcomeAsync();
        await connection.AssignAsync(1, new StepSpec
        {
            Id = "wait",
            Framework = "shell",
            Command = $"echo ready; while [ ! -f '{release}' ]; do sleep 0.05; done; printf drained > \"$CP_OUTPUT_FILE\"",
        });
        await connection.WaitForAsync(m => m.StepLog?.Lines.Contains("ready") == true);

        Assert.True(ProcessGroup.SignalProcess(host.Id, ProcessGroup.SigTerm));
        await connection.WaitForAsync(m => m.SlotsChanged is { Slots: 0 });

        // A second SIGTERM while draining neither kills the process nor cuts the running step short.
        Assert.True(ProcessGroup.SignalProcess(host.Id, ProcessGroup.SigTerm));
        await File.WriteAllTextAsync(release, "go");
        var completed = await connection.CompletedAsync(1);
        var exitCode = await host.Exited.WithTimeout();

        Assert.Equal(("host-1", 1), (hello.AgentId, hello.Slots));
        Assert.Equal(["default", "gpu"], hello.Queues);
        Assert.Equal(["dotnet", "shell"], hello.Frameworks);
        Assert.Equal("drained", completed.Output.ToStringUtf8());
        Assert.True(exitCode == 0, $"exit code {exitCode}; stderr:\n{host.StandardError}");
        Assert.DoesNotContain("Unhandled exception", host.StandardError, StringComparison.Ordinal);
        await connection.Ended.WithTimeout();
    }

    [Fact]
    public async Task Host_InvalidOptions_ExitsTwoWithOneLineNamingTheSettingAndFlag()
    {
        await using var host = AgentHostProcess.Start("--scheduler", _scheduler.Address, "--slots", "0");

        var exitCode = await host.Exited.WithTimeout();

        Assert.Equal(2, exitCode);
        Assert.Equal("error: Slots is 0; set it between 1 and 10000 (from flag --slots)", host.StandardError.Trim());
    }

    [Fact]
    public async Task Host_UnknownFlag_ExitsTwo()
    {
        await using var host = AgentHostProcess.Start("--scheduler", _scheduler.Address, "--slot", "2");

        var exitCode = await host.Exited.WithTimeout();

        Assert.Equal(2, exitCode);
        Assert.Equal("error: unknown flag --slot; did you mean --slots? cp-agent --help lists every flag", host.StandardError.Trim());
    }

    [Fact]
    public async Task Host_DeprecatedIdFlagAndAgentVariables_StillWorkWithAWarningEach()
    {
        var environment = new Dictionary<string, string> { ["CP_AGENT__SLOTS"] = "2", ["CP_AGENT__LABELS__TEAM"] = "vision" };
        await using var host = ObservedProcess.Start("cp-agent", "dotnet", [AgentHostProcess.HostPath(), "--scheduler", _scheduler.Address, "--id", "old-1"], _dir.Path, environment);

        var hello = await (await _scheduler.NextConnectionAsync()).HelloAsync();

        Assert.Equal(("old-1", 2), (hello.AgentId, hello.Slots));
        Assert.Equal("vision", hello.Labels["team"]);
        await host.WaitForLineAsync(l => l == "warning: --id is deprecated and will be removed in the next release; use --agent-id", ProcessTimeout, "the --id warning");
        await host.WaitForLineAsync(l => l == "warning: CP_AGENT__SLOTS is deprecated and will be removed in the next release; use CP_SLOTS", ProcessTimeout, "the CP_AGENT__SLOTS warning");
        await host.WaitForLineAsync(l => l == "warning: CP_AGENT__LABELS__TEAM is deprecated and will be removed in the next release; use CP_LABELS__TEAM", ProcessTimeout, "the label warning");
    }

    [Fact]
    public async Task Host_UnderSystemd_ReadyOnceStartedStoppingOnSigtermThenExitsZero()
    {
        await using var systemd = await FakeSystemd.StartAsync(
            "cp-agent", ProcessTimeout, "dotnet", AgentHostProcess.HostPath(), "--scheduler", _scheduler.Address, "--agent-id", "sd-1", "--work-root", Path.Combine(_dir.Path, "work"));

        await systemd.WaitForNotificationAsync("READY=1", ProcessTimeout);

        // Ready means the agent runs: its start line is out, and it connects and says Hello.
        await systemd.WaitForLineAsync(l => l.StartsWith("agent sd-1 connecting to ", StringComparison.Ordinal), ProcessTimeout, "its start line");
        var connection = await _scheduler.NextConnectionAsync();
        Assert.Equal("sd-1", (await connection.HelloAsync()).AgentId);
        await connection.WelcomeAsync();

        await systemd.TerminateDaemonAsync();
        await systemd.WaitForNotificationAsync("STOPPING=1", ProcessTimeout);
        var exitCode = await systemd.WaitForExitAsync(ProcessTimeout);

        Assert.True(exitCode == 0, $"exit code {exitCode}. Output:\n{systemd.Output}");
        Assert.Equal(["READY=1", "STOPPING=1"], systemd.Notifications);
        Assert.Contains("agent sd-1 stopped", systemd.Output, StringComparison.Ordinal);
    }
}
