using ControlPlane.Agent.Internal;
using ControlPlane.V1;

namespace ControlPlane.Agent.Tests;

public sealed class AgentHostTests : IAsyncLifetime
{
    private readonly TempDirectory _dir = new();
    private FakeScheduler _scheduler = null!;

    public async Task InitializeAsync() => _scheduler = await FakeScheduler.StartAsync();

    public async Task DisposeAsync()
    {
        await _scheduler.DisposeAsync();
        _dir.Dispose();
    }

    [Fact]
    public async Task Host_Sigterm_DrainsRunningStepThenExitsZero()
    {
        var release = Path.Combine(_dir.Path, "release");
        await using var host = AgentHostProcess.Start("--scheduler", _scheduler.Address, "--id", "host-1", "--slots", "1", "--queues", "default,gpu", "--work-root", Path.Combine(_dir.Path, "work"));
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
        await File.WriteAllTextAsync(release, "go");
        var completed = await connection.CompletedAsync(1);
        var exitCode = await host.Exited.WithTimeout();

        Assert.Equal(("host-1", 1), (hello.AgentId, hello.Slots));
        Assert.Equal(["default", "gpu"], hello.Queues);
        Assert.Equal(["dotnet", "shell"], hello.Frameworks);
        Assert.Equal("drained", completed.Output.ToStringUtf8());
        Assert.Equal(0, exitCode);
        await connection.Ended.WithTimeout();
    }

    [Fact]
    public async Task Host_InvalidOptions_ExitsTwoNamingTheSetting()
    {
        await using var host = AgentHostProcess.Start("--scheduler", _scheduler.Address, "--slots", "0");

        var exitCode = await host.Exited.WithTimeout();

        Assert.Equal(2, exitCode);
        Assert.Contains("Agent:Slots is 0", host.StandardError, StringComparison.Ordinal);
    }
}
