using System.Text.RegularExpressions;
using ControlPlane.Cli.Internal;
using ControlPlane.Tests.Support;
using Xunit;

namespace ControlPlane.Cli.Tests;

/// <summary><c>cpctl dev</c> as a user runs it: the real executable, its stdout a pipe, signals from outside.</summary>
public sealed partial class DevProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cpctl-dev-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Repository => DevPipelineLocator.FindRepositoryRoot(AppContext.BaseDirectory)
        ?? throw new InvalidOperationException("the tests run from inside the repository; ControlPlane.sln was not found above " + AppContext.BaseDirectory);

    // The summary table's row for a step: "load  FAILED  2  1.3s  -  ...".
    private static string[] SummaryRow(string output, string step)
    {
        var table = output[output.LastIndexOf("STEP ", StringComparison.Ordinal)..];
        var line = Assert.Single(table.Split('\n'), l => l.StartsWith(step + " ", StringComparison.Ordinal));
        return line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
    }

    [Fact]
    public async Task Dev_NoFile_RunsHelloToSucceededWithASummaryOfEveryStep()
    {
        // The working directory is the test's output folder: hello.yaml is found through the repository root.
        var (exit, output, error) = await CpctlProcess.RunAsync("dev", "--listen", "127.0.0.1:0");

        Assert.True(exit == 0, output + error);
        Assert.Contains("run RUNNING -> SUCCEEDED", output, StringComparison.Ordinal);
        Assert.Contains("State     SUCCEEDED", output, StringComparison.Ordinal);

        // The dashboard's address is among the first lines, on a free port as the gRPC one is.
        var dashboard = output.Split('\n').Take(4).FirstOrDefault(l => l.StartsWith("dev: dashboard on http://127.0.0.1:", StringComparison.Ordinal));
        Assert.True(dashboard is not null, output);
        Assert.DoesNotContain("127.0.0.1:0/", dashboard, StringComparison.Ordinal);
        Assert.Contains("STEP    STATE      ATTEMPTS  DURATION  OUTPUT", output, StringComparison.Ordinal);
        foreach (var step in new[] { "plan", "part-a", "part-b", "part-c", "join" })
        {
            var row = SummaryRow(output, step);
            Assert.Equal("SUCCEEDED", row[1]);
            Assert.Equal("1", row[2]);
            Assert.Matches(@"^\d+\.\ds$", row[3]);
        }

        Assert.Equal(["102", "B"], SummaryRow(output, "join")[4..6]);
        Assert.DoesNotContain('\u001b', output);
    }

    [Fact]
    public async Task Dev_FailureHooksExample_ExitsNonZeroAndRunsTheHooks()
    {
        var (exit, output, error) = await CpctlProcess.RunAsync("dev", "examples/failure-hooks.yaml", "--listen", "127.0.0.1:0");

        Assert.True(exit == ExitCodes.RunNotSucceeded, output + error);
        Assert.Contains("State     FAILED", output, StringComparison.Ordinal);
        Assert.Equal("FAILED", SummaryRow(output, "load")[1]);
        Assert.Equal("2", SummaryRow(output, "load")[2]);
        Assert.Equal("SKIPPED", SummaryRow(output, "report")[1]);
        Assert.Equal("SUCCEEDED", SummaryRow(output, "page-oncall")[1]);
        Assert.Equal("SUCCEEDED", SummaryRow(output, "cleanup")[1]);
        Assert.Contains("step load stderr | database refused the connection", output, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', output);
    }

    [Fact]
    public async Task Dev_MissingFile_ExitsTwoNamingWhereItLooked()
    {
        var (exit, _, error) = await CpctlProcess.RunAsync("dev", "examples/nope.yaml", "--listen", "127.0.0.1:0");

        Assert.Equal(ExitCodes.InvalidInput, exit);
        Assert.StartsWith("error: pipeline file 'examples/nope.yaml' was not found (looked at ", error, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(Repository, "examples", "nope.yaml"), error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dev_Interrupted_CancelsTheRunKillsItsProcessesAndExits130()
    {
        var path = Path.Combine(_dir, "long.yaml");
        await File.WriteAllTextAsync(path, """
            name: long-sleep
            steps:
              - id: nap
                framework: shell
                run: |
                  sleep 600 &
                  echo "::cp progress 10 sleeping as pid $!"
                  wait
              - id: after
                needs: [nap]
                framework: shell
                run: echo never
            """);
        await using var dev = CpctlProcess.Cpctl("dev", path, "--listen", "127.0.0.1:0");
        var line = await dev.WaitForLineAsync(l => l.Contains("sleeping as pid ", StringComparison.Ordinal), CpctlProcess.Timeout, "the sleep's pid");
        var sleepPid = int.Parse(SleepPid().Match(line).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(ProcessProbe.IsRunning(sleepPid, "sleep"), $"sleep {sleepPid} should run before Ctrl+C");

        await dev.SignalAsync("INT");
        var exit = await dev.Exited.WaitAsync(CpctlProcess.Timeout);

        Assert.True(exit == ExitCodes.Interrupted, dev.Output);
        Assert.Contains("dev: cancelling run ", dev.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("State     CANCELLED", dev.StandardOutput, StringComparison.Ordinal);
        Assert.Equal("CANCELLED", SummaryRow(dev.StandardOutput, "nap")[1]);
        Assert.NotEqual("SUCCEEDED", SummaryRow(dev.StandardOutput, "after")[1]);
        Assert.False(ProcessProbe.IsRunning(sleepPid, "sleep"), $"sleep {sleepPid} outlived the cancelled run");
        Assert.DoesNotContain('\u001b', dev.StandardOutput);
    }

    [Fact]
    public async Task Dev_KeepRunning_ServesOtherCommandsUntilInterrupted()
    {
        await using var dev = CpctlProcess.Cpctl("dev", "--keep-running", "--listen", "127.0.0.1:0");
        var hint = await dev.WaitForLineAsync(l => l.StartsWith("dev: try: cpctl run ls --scheduler ", StringComparison.Ordinal), CpctlProcess.Timeout, "its \"dev: try:\" hint");
        var address = hint["dev: try: cpctl run ls --scheduler ".Length..].Trim();
        Assert.Matches(@"^http://127\.0\.0\.1:\d+$", address);
        Assert.Contains($"dev: scheduler and agent stay up on {address}; Ctrl+C stops them", dev.StandardOutput, StringComparison.Ordinal);

        var (lsExit, ls, lsError) = await CpctlProcess.RunAsync("run", "ls", "--scheduler", address);

        Assert.True(lsExit == 0, ls + lsError);
        var row = Assert.Single(ls.Split('\n'), l => l.Contains(" hello ", StringComparison.Ordinal));
        Assert.Contains("SUCCEEDED", row, StringComparison.Ordinal);

        await dev.SignalAsync("INT");
        Assert.Equal(0, await dev.Exited.WaitAsync(CpctlProcess.Timeout));
    }

    [GeneratedRegex(@"sleeping as pid (\d+)")]
    private static partial Regex SleepPid();
}
