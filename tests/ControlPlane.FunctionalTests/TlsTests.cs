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

    [Fact]
    public async Task AgentWithClientCertificateAndNoToken_RunsAStepOnAnAuthenticatedScheduler()
    {
        await using var cluster = await FunctionalCluster.StartTlsAsync(redis, AdminToken);
        await cluster.StartAgentAsync("agent-cert", slots: 1);
        var spec = Spec("by-certificate", Shell("hello", "printf 'by certificate' > \"$CP_OUTPUT_FILE\""));
        spec.Steps[0].KeepOutput = true;

        var run = (await cluster.Client.SubmitRunAsync(spec)).Run;
        await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);
        var output = await cluster.Client.GetStepOutputAsync(run.Id, "hello");
        var agents = await cluster.Client.ListAgentsAsync();

        Assert.Equal("by certificate", output.Data.ToStringUtf8());
        Assert.Contains(agents, a => a.AgentId == "agent-cert");
    }

    [Fact]
    public async Task AgentWhoseCertificateNamesAgent2_SaysItIsAgent1_RefusedAndNeverRegistered()
    {
        await using var cluster = await FunctionalCluster.StartTlsAsync(redis, AdminToken);
        var (cert, key) = cluster.Pki!.IssueClient("agent-2");
        var impostor = ObservedProcess.Start("agent impostor", FunctionalCluster.AgentPath,
            ["--scheduler", cluster.Address, "--agent-id", "agent-1", "--work-root", cluster.Path2("work-impostor"), "--ca", cluster.Pki.CaFile, "--cert", cert, "--key", key],
            environment: new Dictionary<string, string> { ["CP_MAX_RECONNECT_DELAY"] = "1s" });
        cluster.Own(impostor);

        await impostor.WaitForLineAsync(
            l => l.Contains("PermissionDenied", StringComparison.Ordinal) && l.Contains("not as 'agent-1'", StringComparison.Ordinal),
            FunctionalCluster.Timeout,
            "the scheduler's refusal of agent-1");
        var agents = await cluster.Client.ListAgentsAsync();

        Assert.DoesNotContain(agents, a => a.AgentId == "agent-1");
        Assert.DoesNotContain("Connected to ", impostor.Output, StringComparison.Ordinal);
    }

    private const string AdminToken = "cpt_functional-tls-admin-0123456789abcdef";
}
