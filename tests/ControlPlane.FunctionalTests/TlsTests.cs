using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Xunit;
using static ControlPlane.FunctionalTests.FunctionalSpecs;

namespace ControlPlane.FunctionalTests;

/// <summary>A real scheduler speaking TLS with a private CA and --client-ca, and real cp-agent processes.</summary>
[Collection(FunctionalTestGroup.Name)]
public sealed class TlsTests(RedisServerFixture redis)
{
    [Fact]
    public async Task AgentOverMutualTls_RunsAShellStepEndToEnd()
    {
        await using var cluster = await FunctionalCluster.StartTlsAsync(redis);
        await cluster.StartAgentAsync("agent-tls", slots: 1);
        var spec = Spec("over-tls", Shell("hello", "printf 'over tls' > \"$CP_OUTPUT_FILE\""));
        spec.Steps[0].KeepOutput = true;

        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);
        var output = await cluster.Client.GetStepOutputAsync(run.Id, "hello");

        Assert.StartsWith("https://", cluster.Address, StringComparison.Ordinal);
        Assert.Equal("over tls", output.Data.ToStringUtf8());
    }

    [Fact]
    public async Task AgentWithoutCa_ReconnectLineSaysWhichCaToPass()
    {
        await using var cluster = await FunctionalCluster.StartTlsAsync(redis);
        await using var agent = ObservedProcess.Start("agent no-ca", FunctionalCluster.AgentPath,
            ["--scheduler", cluster.Address, "--agent-id", "agent-no-ca", "--work-root", cluster.Path2("work-no-ca")],
            environment: new Dictionary<string, string> { ["CP_MAX_RECONNECT_DELAY"] = "1s" });

        var line = await agent.WaitForLineAsync(l => l.Contains("does not trust", StringComparison.Ordinal), FunctionalCluster.Timeout, "a reconnect line about the CA");

        Assert.Contains("issued by 'CN=ControlPlane test CA'", line, StringComparison.Ordinal);
        Assert.Contains("--ca (or CP_CA)", line, StringComparison.Ordinal);
    }
}
