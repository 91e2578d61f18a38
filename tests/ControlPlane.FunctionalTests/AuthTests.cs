using ControlPlane.Client;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Grpc.Core;
using Xunit;
using static ControlPlane.FunctionalTests.FunctionalSpecs;

namespace ControlPlane.FunctionalTests;

/// <summary>Tokens end to end with real processes: a scheduler with --admin-token-file, tokens made by cpctl, agents with --token-file.</summary>
[Collection(FunctionalTestGroup.Name)]
public sealed class AuthTests(RedisServerFixture redis)
{
    private const string Admin = "cpt_functional-admin-0123456789abcdef";

    private static string LastLine(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1];

    [Fact]
    public async Task AdminTokenFile_CpctlMakesAgentAndSubmitterTokens_AgentWithTokenFileRunsThePipeline()
    {
        await using var cluster = await FunctionalCluster.StartAuthenticatedAsync(redis, Admin);
        var env = new Dictionary<string, string> { ["CP_TOKEN"] = Admin };
        var agentToken = await cluster.CpctlAsync(env, "auth", "token", "create", "--role", "agent", "--agent-id", "agent-1", "--name", "agent-1");
        var submitterToken = await cluster.CpctlAsync(env, "auth", "token", "create", "--role", "submitter", "--name", "ci", "--ttl", "1h");
        Assert.True(agentToken.ExitCode == 0, agentToken.Error);
        Assert.True(submitterToken.ExitCode == 0, submitterToken.Error);
        await cluster.StartAgentAsync("agent-1", slots: 2, tokenFile: cluster.WriteSecret("agent-1.token", LastLine(agentToken.Out)));
        cluster.ClientToken = LastLine(submitterToken.Out);

        var run = (await cluster.Client.SubmitRunAsync(Spec("tokens", Shell("a", "echo one"), Shell("b", "echo two", "a")))).Run;
        var done = await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);
        var drain = await Assert.ThrowsAsync<RpcException>(() => cluster.Client.DrainAgentAsync("agent-1"));

        Assert.All(done.Steps, s => Assert.Equal("agent-1", s.AgentId));
        Assert.Equal(StatusCode.PermissionDenied, drain.StatusCode);
        Assert.Equal(ErrorReason.RoleNotAllowed, drain.GetErrorReason());
    }

    [Fact]
    public async Task TokenForAgent1_AgentSaysItIsAgent2_RefusedAndNeverRegistered()
    {
        await using var cluster = await FunctionalCluster.StartAuthenticatedAsync(redis, Admin);
        var created = await cluster.CpctlAsync(new Dictionary<string, string> { ["CP_TOKEN"] = Admin },
            "auth", "token", "create", "--role", "agent", "--agent-id", "agent-1", "--name", "agent-1");
        var tokenFile = cluster.WriteSecret("agent-1.token", LastLine(created.Out));

        var impostor = cluster.LaunchAgent("agent-2", slots: 1, tokenFile: tokenFile);
        await impostor.WaitForLineAsync(
            l => l.Contains("PermissionDenied", StringComparison.Ordinal) && l.Contains("not as 'agent-2'", StringComparison.Ordinal),
            FunctionalCluster.Timeout,
            "the scheduler's refusal of agent-2");
        var agents = await cluster.Client.ListAgentsAsync();

        Assert.DoesNotContain(agents, a => a.AgentId == "agent-2");
        Assert.DoesNotContain("Connected to ", impostor.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CpctlAuditLs_ShowsWhoSubmittedAndMadeTokens_OnRedisWithoutSecrets_AdminOnly()
    {
        await using var cluster = await FunctionalCluster.StartAuthenticatedAsync(redis, Admin);
        var env = new Dictionary<string, string> { ["CP_TOKEN"] = Admin };
        var created = await cluster.CpctlAsync(env, "auth", "token", "create", "--role", "submitter", "--name", "ci");
        var ci = LastLine(created.Out);
        cluster.ClientToken = ci;
        var run = (await cluster.Client.SubmitRunAsync(Spec("audited", Gate("g")))).Run;
        await cluster.Client.CancelRunAsync(run.Id, "audit test");

        var table = await cluster.CpctlAsync(env, "audit", "ls");
        var json = await cluster.CpctlAsync(env, "audit", "ls", "--action", "token.create", "--output", "json");
        var refused = await cluster.CpctlAsync(new Dictionary<string, string> { ["CP_TOKEN"] = ci }, "audit", "ls");

        Assert.True(table.ExitCode == 0, table.Error);
        var lines = table.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("TIME", lines[0], StringComparison.Ordinal);
        Assert.Matches($@"\bci\s+submitter\s+run\.cancel\s+{run.Id}\s+succeeded\s+audit test", lines[1]);
        Assert.Matches($@"\bci\s+submitter\s+run\.submit\s+{run.Id}\s+succeeded", lines[2]);
        Assert.Matches(@"\badmin\s+admin\s+token\.create\s+ci\s+succeeded\s+role=submitter namespace=", lines[3]);
        Assert.True(json.ExitCode == 0, json.Error);
        Assert.Contains("\"token.create\"", json.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("run.submit", json.Out, StringComparison.Ordinal);
        Assert.DoesNotContain(ci, table.Out + json.Out, StringComparison.Ordinal);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("may not call controlplane.v1.AuditService/ListAudit", refused.Error, StringComparison.Ordinal);
    }
}
