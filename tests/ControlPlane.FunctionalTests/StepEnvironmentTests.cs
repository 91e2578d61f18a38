using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Xunit;
using static ControlPlane.FunctionalTests.FunctionalSpecs;

namespace ControlPlane.FunctionalTests;

/// <summary>What a shell step of a real cp-agent process sees: a minimal environment, never the agent's token or settings.</summary>
[Collection(FunctionalTestGroup.Name)]
public sealed class StepEnvironmentTests(RedisServerFixture redis)
{
    private static readonly string[] Contract = ["CP_RUN_ID", "CP_STEP_ID", "CP_ATTEMPT", "CP_PARAMS", "CP_INPUTS_DIR", "CP_OUTPUT_FILE", "CP_WORK_DIR", "TRACEPARENT"];

    [Fact]
    public async Task ShellStep_AgentEnvironmentWithTokenAndOtherVariables_SeesOnlyTheAllowedSet()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis);
        var names = await RunEnvAsync(cluster, []);

        Assert.DoesNotContain("CP_TOKEN", names);
        Assert.DoesNotContain("SOMETHING", names);
        Assert.DoesNotContain("CP_SCHEDULER", names);
        Assert.DoesNotContain("CP_MAX_RECONNECT_DELAY", names);
        Assert.All(Contract, name => Assert.Contains(name, names));
        Assert.Contains("PATH", names);
        Assert.Empty(names.Except(Contract).Except(["PATH", "HOME", "LANG", "TZ", "PWD", "SHLVL", "OLDPWD", "_"]));
    }

    [Fact]
    public async Task ShellStep_PassEnv_PassesTheNamedVariableOnly()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis);
        var names = await RunEnvAsync(cluster, ["--pass-env", "SOMETHING"]);

        Assert.Contains("SOMETHING", names);
        Assert.DoesNotContain("CP_TOKEN", names);
        Assert.DoesNotContain("OTHER_THING", names);
    }

    [Fact]
    public async Task ShellStep_WorkDirectory_IsPrivate()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis);
        await StartAgentAsync(cluster, []);
        var spec = Spec("private-dir", Shell("mode", "stat -c '%a' \"$CP_WORK_DIR\" \"$CP_WORK_DIR/..\" > \"$CP_OUTPUT_FILE\""));
        spec.Steps[0].KeepOutput = true;

        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);
        var output = (await cluster.Client.GetStepOutputAsync(run.Id, "mode")).Data.ToStringUtf8();

        Assert.Equal(["700", "700"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    private static async Task<HashSet<string>> RunEnvAsync(FunctionalCluster cluster, string[] arguments)
    {
        await StartAgentAsync(cluster, arguments);
        var spec = Spec("env", Shell("env", "env > \"$CP_OUTPUT_FILE\""));
        spec.Steps[0].KeepOutput = true;

        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);
        var output = (await cluster.Client.GetStepOutputAsync(run.Id, "env")).Data.ToStringUtf8();
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.Contains('=', StringComparison.Ordinal)).Select(l => l[..l.IndexOf('=', StringComparison.Ordinal)]).ToHashSet(StringComparer.Ordinal);
    }

    private static async Task StartAgentAsync(FunctionalCluster cluster, string[] arguments)
    {
        var agent = ObservedProcess.Start("agent env", FunctionalCluster.AgentPath,
            ["--scheduler", cluster.Address, "--agent-id", "agent-env", "--work-root", cluster.Path2("work-env"), .. arguments],
            environment: new Dictionary<string, string>
            {
                ["CP_TOKEN"] = "secret",
                ["SOMETHING"] = "x",
                ["OTHER_THING"] = "y",
                ["CP_MAX_RECONNECT_DELAY"] = "1s",
            });
        cluster.Own(agent);
        await FunctionalCluster.WaitConnectedAsync(agent, 1);
    }
}
