using ControlPlane.Scheduler.Audit;
using ControlPlane.V1;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

/// <summary>The audit trail over real calls: who did what is recorded with the caller's token name, never a secret, and only admins read it.</summary>
public sealed class AuditServiceTests
{
    private static readonly CallOptions Admin = AuthTestHost.Bearer(AuthTestHost.AdminSecret);

    [Fact]
    public async Task AuditedActions_RecordedWithTheCallersTokenNameAndNoSecret()
    {
        await using var host = await AuthTestHost.StartAsync();
        var auth = new AuthService.AuthServiceClient(host.Channel);
        var runs = new RunService.RunServiceClient(host.Channel);
        var admin = new AdminService.AdminServiceClient(host.Channel);
        var ci = await auth.CreateTokenAsync(new CreateTokenRequest { Name = "ci", Role = TokenRole.Submitter }, Admin);
        var agentToken = await auth.CreateTokenAsync(new CreateTokenRequest { Name = "agent-1", Role = TokenRole.Agent, AgentId = "agent-1" }, Admin);
        var temp = await auth.CreateTokenAsync(new CreateTokenRequest { Name = "temp", Role = TokenRole.Reader }, Admin);
        await auth.RevokeTokenAsync(new RevokeTokenRequest { Name = "temp" }, Admin);
        var approver = await host.AddTokenAsync("release-manager", TokenRole.Approver);
        var ops = await host.AddTokenAsync("ops", TokenRole.Operator, "*");

        var approved = (await runs.SubmitRunAsync(new SubmitRunRequest { Spec = Specs.Run(Specs.Gate("g")) }, AuthTestHost.Bearer(ci.Token))).Run;
        var rejected = (await runs.SubmitRunAsync(new SubmitRunRequest { Spec = Specs.Run(Specs.Gate("g")) }, AuthTestHost.Bearer(ci.Token))).Run;
        var cancelled = (await runs.SubmitRunAsync(new SubmitRunRequest { Spec = Specs.Run(Specs.Gate("g")) }, AuthTestHost.Bearer(ci.Token))).Run;
        await runs.ApproveGateAsync(new ApproveGateRequest { RunId = approved.Id, StepId = "g", Decision = GateDecision.Approve }, AuthTestHost.Bearer(approver));
        await runs.ApproveGateAsync(new ApproveGateRequest { RunId = rejected.Id, StepId = "g", Decision = GateDecision.Reject }, AuthTestHost.Bearer(approver));
        await runs.CancelRunAsync(new CancelRunRequest { RunId = cancelled.Id, Reason = "not needed" }, AuthTestHost.Bearer(ci.Token));
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("agent-1"), new Metadata { { "authorization", "Bearer " + agentToken.Token } });
        Assert.Equal(ConnectResponse.MessageOneofCase.Welcome, (await agent.NextAsync().WaitAsync(ServiceTestHost.Timeout)).MessageCase);
        await admin.DrainAgentAsync(new DrainAgentRequest { AgentId = "agent-1" }, AuthTestHost.Bearer(ops));
        await admin.SetLimitAsync(new SetLimitRequest { Kind = LimitKind.Queue, Name = "gpu", Limit = 4 }, AuthTestHost.Bearer(ops));

        var response = await new AuditService.AuditServiceClient(host.Channel).ListAuditAsync(new ListAuditRequest(), Admin);
        var rows = response.Entries.Select(e => $"{e.Actor} ({e.Role}) {e.Action} {e.Target} {e.Outcome}").Reverse().ToList();
        var everything = JsonFormatter.Default.Format(response);

        Assert.Equal(
        [
            "admin (admin) token.create ci Succeeded",
            "admin (admin) token.create agent-1 Succeeded",
            "admin (admin) token.create temp Succeeded",
            "admin (admin) token.revoke temp Succeeded",
            $"ci (submitter) run.submit {approved.Id} Succeeded",
            $"ci (submitter) run.submit {rejected.Id} Succeeded",
            $"ci (submitter) run.submit {cancelled.Id} Succeeded",
            $"release-manager (approver) gate.approve {approved.Id}/g Succeeded",
            $"release-manager (approver) gate.reject {rejected.Id}/g Succeeded",
            $"ci (submitter) run.cancel {cancelled.Id} Succeeded",
            "ops (operator) agent.drain agent-1 Succeeded",
            "ops (operator) limit.set queue:gpu Succeeded",
        ],
        rows);
        Assert.Contains(response.Entries, e => e.Action == AuditActions.TokenCreate && e.Target == "agent-1" && e.Detail == "role=agent namespace=default agent_id=agent-1");
        Assert.Contains(response.Entries, e => e.Action == AuditActions.LimitSet && e.Detail == "limit=4");
        Assert.All(response.Entries, e => Assert.InRange(e.Time.ToDateTimeOffset(), DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(1)));
        foreach (var secret in new[] { ci.Token, agentToken.Token, temp.Token, approver, ops, AuthTestHost.AdminSecret })
        {
            Assert.DoesNotContain(secret, everything, StringComparison.Ordinal);
            Assert.DoesNotContain(secret[4..20], everything, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ListAudit_ByActionAndCursor_PagesThroughThatActionOnly()
    {
        await using var host = await AuthTestHost.StartAsync();
        var runs = new RunService.RunServiceClient(host.Channel);
        var auth = new AuthService.AuthServiceClient(host.Channel);
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add((await runs.SubmitRunAsync(new SubmitRunRequest { Spec = Specs.Run(Specs.Gate("g")) }, Admin)).Run.Id);
            await auth.CreateTokenAsync(new CreateTokenRequest { Name = "t-" + i, Role = TokenRole.Reader }, Admin);
        }

        var client = new AuditService.AuditServiceClient(host.Channel);
        var first = await client.ListAuditAsync(new ListAuditRequest { Action = AuditActions.RunSubmit, Limit = 3 }, Admin);
        var second = await client.ListAuditAsync(new ListAuditRequest { Action = AuditActions.RunSubmit, Limit = 3, Cursor = first.NextCursor }, Admin);

        Assert.Equal(ids.AsEnumerable().Reverse(), first.Entries.Concat(second.Entries).Select(e => e.Target));
        Assert.NotEmpty(first.NextCursor);
        Assert.Empty(second.NextCursor);
    }

    [Theory]
    [InlineData(TokenRole.Operator, "*")]
    [InlineData(TokenRole.Submitter, "default")]
    [InlineData(TokenRole.Reader, "default")]
    [InlineData(TokenRole.Approver, "default")]
    [InlineData(TokenRole.Agent, "default")]
    public async Task ListAudit_NotAdmin_PermissionDenied(TokenRole role, string ns)
    {
        await using var host = await AuthTestHost.StartAsync();
        var secret = await host.AddTokenAsync("someone", role, ns);

        var ex = await Assert.ThrowsAsync<RpcException>(() => new AuditService.AuditServiceClient(host.Channel).ListAuditAsync(new ListAuditRequest(), AuthTestHost.Bearer(secret)).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, ex.StatusCode);
    }

    [Theory]
    [InlineData(-1, "", "limit")]
    [InlineData(1001, "", "limit")]
    [InlineData(0, "bogus", "cursor")]
    public async Task ListAudit_BadField_InvalidArgumentNamingIt(int limit, string cursor, string field)
    {
        await using var host = await AuthTestHost.StartAsync();

        var ex = await Assert.ThrowsAsync<RpcException>(() => new AuditService.AuditServiceClient(host.Channel).ListAuditAsync(new ListAuditRequest { Limit = limit, Cursor = cursor }, Admin).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.StartsWith(field, ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AuthenticationOff_ActorIsAnonymous()
    {
        var options = new SchedulerOptions { Listen = "127.0.0.1:0" };
        await using var store = new EmbeddedRunStore(options.CreateStoreOptions());
        await using var server = new SchedulerServer(options, store);
        await server.StartAsync();
        using var channel = GrpcChannel.ForAddress(server.Addresses[0].ToString());

        var run = (await new RunService.RunServiceClient(channel).SubmitRunAsync(new SubmitRunRequest { Spec = Specs.Run(Specs.Gate("g")) })).Run;
        var entry = Assert.Single((await new AuditService.AuditServiceClient(channel).ListAuditAsync(new ListAuditRequest())).Entries);

        Assert.Equal((AuditTrail.Anonymous, "", AuditActions.RunSubmit, run.Id), (entry.Actor, entry.Role, entry.Action, entry.Target));
    }
}
