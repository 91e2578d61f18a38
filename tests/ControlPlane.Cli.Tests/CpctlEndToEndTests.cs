using ControlPlane.Cli.Internal;
using Xunit;

namespace ControlPlane.Cli.Tests;

/// <summary>
/// cpctl against the real scheduler and agent: <c>dev</c> in-process, and <c>server</c> + <c>agent</c> as separate
/// processes with <c>run submit --wait</c> talking to them.
/// </summary>
public sealed class CpctlEndToEndTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("cpctl-e2e-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string WriteFile(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static async Task<CpctlTests.Result> Cpctl(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var context = new CliContext(output, error, _ => null);
        var exit = await Internal.Cpctl.RunAsync(args, context, handleTermination: false, CancellationToken.None).WaitAsync(Timeout);
        return new CpctlTests.Result(exit, output.ToString(), error.ToString());
    }

    private const string TwoSteps = """
        name: e2e
        steps:
          - id: hello
            framework: shell
            run: |
              echo "::cp progress 50 half way"
              printf hello > "$CP_OUTPUT_FILE"
          - id: world
            needs: [hello]
            framework: shell
            run: cat "$CP_INPUTS_DIR/hello"; echo " world"
        """;

    [Fact]
    public async Task Dev_PipelineFile_RunsItToSuccessWithEveryEvent()
    {
        var path = WriteFile("ok.yaml", TwoSteps);

        var result = await Cpctl("dev", path, "--listen", "127.0.0.1:0", "--slots", "2");

        Assert.True(result.ExitCode == 0, result.Out + result.Error);
        Assert.Contains("step hello 50% half way", result.Out, StringComparison.Ordinal);
        Assert.Contains("step world stdout | hello world", result.Out, StringComparison.Ordinal);
        Assert.Contains("run RUNNING -> SUCCEEDED", result.Out, StringComparison.Ordinal);
        Assert.Contains("State     SUCCEEDED", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dev_FailingStep_ExitsThreeAndSkipsWhatNeedsIt()
    {
        var path = WriteFile("fail.yaml", """
            name: e2e-fail
            steps:
              - id: boom
                framework: shell
                run: exit 7
              - id: after
                needs: [boom]
                framework: shell
                run: echo never
            """);

        var result = await Cpctl("dev", path, "--listen", "127.0.0.1:0", "--slots", "1");

        Assert.True(result.ExitCode == ExitCodes.RunNotSucceeded, result.Out + result.Error);
        Assert.Contains("State     FAILED", result.Out, StringComparison.Ordinal);
        var after = Assert.Single(result.Out.Split('\n'), l => l.StartsWith("after ", StringComparison.Ordinal));
        Assert.Contains("SKIPPED", after, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dev_SpecTheSchedulerRejects_PointsAtTheFileLine()
    {
        var path = WriteFile("bad.yaml", """
            name: e2e-bad
            steps:
              - id: a
                framework: shell
                run: echo a
              - id: b
                framework: shell
                run: echo b
                needs:
                  - ghost
            """);

        var result = await Cpctl("dev", path, "--listen", "127.0.0.1:0", "--slots", "1");

        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        Assert.Contains($"{path}:10: steps[1].needs[0]: ", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ServerAndAgent_AsProcesses_RunASubmittedPipeline()
    {
        await using var server = CpctlProcess.Cpctl("server", "--listen", "127.0.0.1:0");
        var address = await server.WaitForListeningAsync(Timeout);
        await using var agent = CpctlProcess.Cpctl("agent", "--scheduler", address, "--agent-id", "e2e-agent", "--slots", "2", "--labels", "zone=test");
        var path = WriteFile("ok.yaml", TwoSteps);

        var result = await Cpctl("run", "submit", path, "--wait", "--scheduler", address);
        var agents = await Cpctl("agents", "ls", "--scheduler", address);

        Assert.True(result.ExitCode == 0, result.Out + result.Error);
        Assert.Contains("step world stdout | hello world", result.Out, StringComparison.Ordinal);
        Assert.Contains("e2e-agent", agents.Out, StringComparison.Ordinal);
        Assert.Contains("zone=test", agents.Out, StringComparison.Ordinal);
        Assert.False(agent.Exited.IsCompleted, $"the agent should keep running. Output:\n{agent.Output}");
    }
}
