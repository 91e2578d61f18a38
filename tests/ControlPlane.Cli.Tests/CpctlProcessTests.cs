using Grpc.Core;
using ControlPlane.Client.Tests;
using ControlPlane.V1;
using Xunit;

namespace ControlPlane.Cli.Tests;

/// <summary>The real cpctl executable, as a shell script would run it: exit codes and stderr.</summary>
public sealed class CpctlProcessTests : IAsyncLifetime
{
    private TestRunService _service = null!;

    public async Task InitializeAsync() => _service = await TestRunService.StartAsync();

    public async Task DisposeAsync() => await _service.DisposeAsync();

    private Task<(int ExitCode, string Out, string Error)> RunCpctl(params string[] args) =>
        CpctlProcess.RunAsync(new Dictionary<string, string> { ["CP_SCHEDULER"] = _service.Address }, args);

    [Fact]
    public async Task Cpctl_UnknownRun_ExitsOneWithOneLineOnStderr()
    {
        var (exit, output, error) = await RunCpctl("run", "get", "r-404");

        Assert.Equal(1, exit);
        Assert.Empty(output);
        Assert.Equal("error: run r-404 not found (NOT_FOUND)\n", error);
    }

    [Fact]
    public async Task Cpctl_StoreUnavailable_HintComesFromTheErrorReasonNotTheMessage()
    {
        _service.FailNext("GetRun", 10, StatusCode.Unavailable, "ERROR_REASON_STORE_UNAVAILABLE");

        var (exit, _, error) = await RunCpctl("run", "get", "r-1");

        Assert.Equal(1, exit);
        Assert.Equal("error: injected Unavailable for GetRun (UNAVAILABLE); the scheduler cannot reach its Redis store: run the command again once Redis is back\n", error);
    }

    [Fact]
    public async Task Cpctl_SubmitWait_ExitsThreeWhenTheRunFails()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cpctl-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, "name: p\nsteps:\n  - id: a\n    framework: shell\n    run: exit 1\n");
        try
        {
            var cli = RunCpctl("run", "submit", path, "--wait");
            var run = await _service.FirstSubmitted.WaitAsync(TimeSpan.FromSeconds(60));
            _service.Finish(run.Id, RunState.Failed);
            var (exit, output, _) = await cli;

            Assert.Equal(3, exit);
            Assert.EndsWith($"run {run.Id} FAILED\n", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Cpctl_BadArguments_ExitsTwo()
    {
        var (exit, _, error) = await RunCpctl("run", "ls", "--label", "oops");

        Assert.Equal(2, exit);
        Assert.StartsWith("error: --label 'oops' is not key=value", error, StringComparison.Ordinal);
    }
}
