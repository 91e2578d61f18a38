using System.Text.Json;
using System.Text.RegularExpressions;
using ControlPlane.Cli.Internal;
using Xunit;

namespace ControlPlane.Cli.Tests;

/// <summary>examples/DotnetAgent and examples/dotnet-steps.yaml, run as the example's comments tell a user to.</summary>
public sealed partial class DotnetAgentExampleTests
{
    [Fact]
    public async Task DotnetAgent_DotnetStepsExample_CountsTheWordsOfTheShellStep()
    {
        var repository = DevPipelineLocator.FindRepositoryRoot(AppContext.BaseDirectory)!;
        await using var server = CpctlProcess.Cpctl("server", "--listen", "127.0.0.1:0");
        var address = await server.WaitForListeningAsync(CpctlProcess.Timeout);
        await using var agent = CpctlProcess.Start("DotnetAgent.dll", ["--scheduler", address, "--agent-id", "dotnet-agent", "--slots", "2"]);

        var (exit, submitted, error) = await CpctlProcess.RunAsync("run", "submit", Path.Combine(repository, "examples", "dotnet-steps.yaml"), "--wait", "--scheduler", address);

        Assert.True(exit == 0, submitted + error + agent.Output);
        var runId = RunId().Match(submitted).Groups[1].Value;
        Assert.Contains("step text stdout | wrote 3 lines", submitted, StringComparison.Ordinal);
        Assert.Contains("step count 100% 3/3 lines", submitted, StringComparison.Ordinal);
        Assert.Contains("step count checkpoint (", submitted, StringComparison.Ordinal);
        Assert.Contains("step count stdout | counted 20 words in 3 lines", submitted, StringComparison.Ordinal);
        Assert.Contains("on dotnet-agent", submitted, StringComparison.Ordinal);

        var (outputExit, output, outputError) = await CpctlProcess.RunAsync("run", "output", runId, "count", "--scheduler", address);

        Assert.True(outputExit == 0, output + outputError);
        using var json = JsonDocument.Parse(output);
        Assert.Equal(3, json.RootElement.GetProperty("lines").GetInt32());
        Assert.Equal(20, json.RootElement.GetProperty("words").GetInt32());
        var top = json.RootElement.GetProperty("top").EnumerateArray().Select(e => $"{e.GetProperty("word").GetString()}={e.GetProperty("count").GetInt32()}");
        Assert.Equal(["the=4", "fox=3", "dog=2"], top);
    }

    [GeneratedRegex(@"^run (\S+) submitted", RegexOptions.Multiline)]
    private static partial Regex RunId();
}
