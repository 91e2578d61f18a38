using System.Text.RegularExpressions;
using ControlPlane.Cli.Internal;
using ControlPlane.Client;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Xunit;

namespace ControlPlane.Cli.Tests;

/// <summary>
/// <c>cpctl top</c> in plain mode, its stdout a pipe, against a real scheduler and agent (<c>cpctl server</c> and
/// <c>cpctl agent</c> as processes): the queue, agent and running-step lines, and their refresh as a step progresses.
/// </summary>
public sealed partial class CpctlTopTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("cpctl-top-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A step that reports 40%, waits for the file go1, reports 70%, waits for go2: the test says when it moves on.</summary>
    private string SlowPipeline() => $"""
        name: top-e2e
        steps:
          - id: work
            framework: shell
            run: |
              echo "::cp progress 40 warming up"
              while [ ! -f '{_dir}/go1' ]; do sleep 0.05; done
              echo "::cp progress 70 almost there"
              while [ ! -f '{_dir}/go2' ]; do sleep 0.05; done
        """;

    /// <summary><c>cpctl server</c> and one <c>cpctl agent</c> with two slots, as processes.</summary>
    private sealed class Cluster : IAsyncDisposable
    {
        private ObservedProcess? _agent;

        private Cluster(ObservedProcess server, string address)
        {
            Server = server;
            Address = address;
        }

        public ObservedProcess Server { get; }

        public string Address { get; }

        public static async Task<Cluster> StartAsync(string? agentId)
        {
            var server = CpctlProcess.Cpctl("server", "--listen", "127.0.0.1:0", "--http-listen", "off");
            var cluster = new Cluster(server, await server.WaitForListeningAsync(Timeout));
            if (agentId is not null)
            {
                cluster._agent = CpctlProcess.Cpctl("agent", "--scheduler", cluster.Address, "--agent-id", agentId, "--slots", "2");
            }

            return cluster;
        }

        public async ValueTask DisposeAsync()
        {
            if (_agent is not null)
            {
                await _agent.DisposeAsync();
            }

            await Server.DisposeAsync();
        }
    }

    private async Task<string> SubmitAsync(string address)
    {
        var path = Path.Combine(_dir, "slow.yaml");
        await File.WriteAllTextAsync(path, SlowPipeline());
        var (exit, output, error) = await CpctlProcess.RunAsync("run", "submit", path, "--scheduler", address);
        Assert.True(exit == 0, output + error);
        return RunIdPattern().Match(output).Groups[1].Value;
    }

    /// <summary>Waits for the step to report <paramref name="percent"/>, from the run's own event stream.</summary>
    private static async Task WaitForProgressAsync(string address, string runId, double percent)
    {
        using var client = new ControlPlaneClient(address);
        using var cancel = new CancellationTokenSource(Timeout);
        await foreach (var runEvent in client.WatchRunAsync(runId, 0, cancel.Token))
        {
            if (runEvent.EventCase == RunEvent.EventOneofCase.StepProgressed && runEvent.StepProgressed.Percent >= percent)
            {
                return;
            }
        }

        Assert.Fail($"run {runId} ended before its step reported {percent}%");
    }

    private static async Task WaitForSuccessAsync(string address, string runId)
    {
        var (exit, output, error) = await CpctlProcess.RunAsync("run", "watch", runId, "--scheduler", address);
        Assert.True(exit == 0, output + error);
    }

    private static string Line(string output, string prefix) =>
        Assert.Single(output.Split('\n'), l => l.StartsWith(prefix, StringComparison.Ordinal)).TrimEnd('\r');

    [Fact]
    public async Task Top_Once_PrintsQueueAgentAndRunningStepWithItsProgress()
    {
        await using var cluster = await Cluster.StartAsync("top-agent");
        var address = cluster.Address;
        var runId = await SubmitAsync(address);
        await WaitForProgressAsync(address, runId, 40);

        var (exit, output, error) = await CpctlProcess.RunAsync("top", "--once", "--scheduler", address);

        Assert.True(exit == 0, output + error);
        Assert.DoesNotContain('\u001b', output);
        Assert.Matches(@"^snapshot \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z queues=1 agents=1 steps=1$", Line(output, "snapshot "));
        Assert.Matches(@"^queue default ready=0 running=1 agents=1 p50=\S+ p95=\S+$", Line(output, "queue "));
        Assert.Matches(@"^agent top-agent connected slots=1/2 queues=default heartbeat=\d+(ms|s) host=\S+$", Line(output, "agent "));
        Assert.Matches(
            $@"^step {runId}/work running attempt=1 agent=top-agent progress=40% age=\d+(ms|s|m\d+s) run=top-e2e message=warming up$",
            Line(output, "step "));
        Assert.Equal("runs running=1 looked_at=1", Line(output, "runs "));
        Assert.Single(output.Split('\n'), l => l.StartsWith("snapshot ", StringComparison.Ordinal));

        File.WriteAllText(Path.Combine(_dir, "go1"), string.Empty);
        File.WriteAllText(Path.Combine(_dir, "go2"), string.Empty);
        await WaitForSuccessAsync(address, runId);
    }

    [Fact]
    public async Task Top_Interval_PrintsABlockPerRefreshFollowingTheProgressUntilInterrupted()
    {
        await using var cluster = await Cluster.StartAsync("top-agent");
        var address = cluster.Address;
        var runId = await SubmitAsync(address);
        await using var top = CpctlProcess.Cpctl("top", "--interval", "0.2s", "--scheduler", address);
        var stepLine = $"step {runId}/work running attempt=1 agent=top-agent ";

        await top.WaitForLineAsync(l => l.StartsWith(stepLine + "progress=40% ", StringComparison.Ordinal) && l.EndsWith(" message=warming up", StringComparison.Ordinal), Timeout, "the step at 40%");
        File.WriteAllText(Path.Combine(_dir, "go1"), string.Empty);
        await top.WaitForLineAsync(l => l.StartsWith(stepLine + "progress=70% ", StringComparison.Ordinal) && l.EndsWith(" message=almost there", StringComparison.Ordinal), Timeout, "the step at 70%");
        File.WriteAllText(Path.Combine(_dir, "go2"), string.Empty);
        await WaitForSuccessAsync(address, runId);
        await top.WaitForLineAsync(l => l == "runs running=0 looked_at=0", Timeout, "a block after the run ended");
        await top.SignalAsync("INT");
        var exit = await top.Exited.WaitAsync(Timeout);

        Assert.True(exit == 0, top.Output);
        Assert.DoesNotContain("interrupted", top.StandardError, StringComparison.Ordinal);
        var blocks = top.StandardOutput.Split('\n').Count(l => l.StartsWith("snapshot ", StringComparison.Ordinal));
        Assert.True(blocks >= 3, top.StandardOutput);
        Assert.Equal(blocks, top.StandardOutput.Split('\n').Count(l => l.StartsWith("runs running=", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Top_MoreRunningRunsThanItLooksAt_SaysHowManyMoreAndDashForNoLatency()
    {
        await using var cluster = await Cluster.StartAsync(agentId: null);
        var address = cluster.Address;
        using var client = new ControlPlaneClient(address);

        // No agent serves the queue, so nothing is dispatched; pausing and resuming a pending run makes it RUNNING with its step READY.
        var extra = 3;
        for (var i = 0; i < TopSnapshot.MaxRuns + extra; i++)
        {
            var spec = new RunSpec { Name = "parked" };
            spec.Steps.Add(new StepSpec { Id = "wait", Framework = "shell", Command = "true", Queue = "nowhere" });
            var run = (await client.SubmitRunAsync(spec)).Run;
            await client.PauseRunAsync(run.Id);
            Assert.Equal(RunState.Running, (await client.ResumeRunAsync(run.Id)).State);
        }

        var (exit, output, error) = await CpctlProcess.RunAsync("top", "--once", "--scheduler", address);

        Assert.True(exit == 0, output + error);
        Assert.Equal($"queue nowhere ready={TopSnapshot.MaxRuns + extra} running=0 agents=0 p50=- p95=-", Line(output, "queue "));
        Assert.Equal($"runs running={TopSnapshot.MaxRuns + extra} looked_at={TopSnapshot.MaxRuns}", Line(output, "runs "));
        Assert.Contains($"and {extra} more running runs not shown", output, StringComparison.Ordinal);
        Assert.DoesNotContain("\nagent ", output, StringComparison.Ordinal);
        Assert.DoesNotContain("\nstep ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Top_SchedulerGoesAway_SaysSoInEachRefreshAndKeepsTrying()
    {
        await using var cluster = await Cluster.StartAsync(agentId: null);
        await using var top = CpctlProcess.Cpctl("top", "--interval", "0.2s", "--scheduler", cluster.Address);
        await top.WaitForLineAsync(l => l.StartsWith("runs running=", StringComparison.Ordinal), Timeout, "a first block");

        await cluster.Server.StopAsync(Timeout);
        var failed = await top.WaitForLineAsync(l => l.StartsWith("snapshot ", StringComparison.Ordinal) && l.EndsWith(" failed", StringComparison.Ordinal), Timeout, "a failed refresh");
        var problem = await top.WaitForLineAsync(l => l.Contains("(UNAVAILABLE)", StringComparison.Ordinal), Timeout, "why the refresh failed");
        await top.SignalAsync("INT");
        var exit = await top.Exited.WaitAsync(Timeout);

        Assert.Matches(@"^snapshot \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z failed$", failed);
        Assert.StartsWith("error: ", problem, StringComparison.Ordinal);
        Assert.Contains("is the scheduler running?", problem, StringComparison.Ordinal);
        Assert.True(exit == 0, top.Output);
    }

    [Fact]
    public async Task Top_PipedIntoHead_ExitsWhenTheReaderGoes()
    {
        await using var cluster = await Cluster.StartAsync(agentId: null);
        var cpctl = Path.Combine(AppContext.BaseDirectory, "cpctl.dll");
        await using var pipeline = ObservedProcess.Start(
            "cpctl top | head -n 1",
            "bash",
            ["-c", $"dotnet '{cpctl}' top --interval 0.2s --scheduler {cluster.Address} | head -n 1"],
            AppContext.BaseDirectory);

        var exit = await pipeline.WaitForExitAsync(Timeout);

        Assert.True(exit == 0, $"exit {exit?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none: still refreshing, killed"}. Output:\n{pipeline.Output}");
        Assert.StartsWith("snapshot ", pipeline.StandardOutput, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0.1s", "--interval '0.1s' is out of range; use a value from 0.2s to 60s, e.g. --interval 2s")]
    [InlineData("61", "--interval '61' is out of range; use a value from 0.2s to 60s, e.g. --interval 2s")]
    [InlineData("100ms", "--interval '100ms' is out of range; use a value from 0.2s to 60s, e.g. --interval 2s")]
    [InlineData("soon", "--interval 'soon' is not a duration; use seconds or milliseconds, e.g. --interval 2s, --interval 0.5 or --interval 500ms")]
    [InlineData("-1", "--interval '-1' is not a duration; use seconds or milliseconds, e.g. --interval 2s, --interval 0.5 or --interval 500ms")]
    public async Task Top_BadInterval_ExitsTwoSayingWhatToPass(string interval, string message)
    {
        var result = await InProcessAsync("top", "--interval", interval, "--scheduler", "http://127.0.0.1:1");

        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        Assert.Equal("error: " + message, result.Error.Trim());
        Assert.Empty(result.Out);
    }

    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("0.2", 200)]
    [InlineData("2s", 2000)]
    [InlineData("60s", 60_000)]
    public void ParseInterval_WithinLimits_ReadsSecondsOrMilliseconds(string text, int milliseconds) =>
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), TopCommand.ParseInterval(text));

    [Fact]
    public async Task Top_SchedulerUnreachable_SaysSoWithHintAndExitsOne()
    {
        var env = new Dictionary<string, string> { ["CP_SCHEDULER"] = "http://127.0.0.1:1" };

        var result = await InProcessAsync(env, "top", "--once", "--namespace", "team-a");

        Assert.Equal(ExitCodes.Failure, result.ExitCode);
        Assert.Contains("(UNAVAILABLE)", result.Error, StringComparison.Ordinal);
        Assert.Contains("is the scheduler running?", result.Error, StringComparison.Ordinal);
        Assert.Empty(result.Out);
    }

    [Fact]
    public async Task Top_JsonOutput_ExitsTwoPointingAtPlain()
    {
        var result = await InProcessAsync("top", "--once", "-o", "json", "--scheduler", "http://127.0.0.1:1");

        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        Assert.Contains("use --plain", result.Error, StringComparison.Ordinal);
    }

    private static Task<CpctlTests.Result> InProcessAsync(params string[] args) => InProcessAsync(new Dictionary<string, string>(), args);

    private static async Task<CpctlTests.Result> InProcessAsync(Dictionary<string, string> env, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var context = new CliContext(output, error, name => env.GetValueOrDefault(name));
        var exit = await Internal.Cpctl.RunAsync(args, context, handleTermination: false, CancellationToken.None).WaitAsync(Timeout);
        return new CpctlTests.Result(exit, output.ToString(), error.ToString());
    }

    [GeneratedRegex(@"^run (\S+) submitted", RegexOptions.Multiline)]
    private static partial Regex RunIdPattern();
}
