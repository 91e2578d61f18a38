using ControlPlane.Scheduler.Security;
using ControlPlane.Scheduler.Services;
using ControlPlane.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Xunit;
using static ControlPlane.Scheduler.Tests.AuthorizationMatrixTests;

namespace ControlPlane.Scheduler.Tests;

/// <summary>AuthService, the agent credential, gate decisions by token, and the start-up rules on listen addresses.</summary>
public sealed class AuthServiceTests
{
    private static readonly CallOptions Admin = AuthTestHost.Bearer(AuthTestHost.AdminSecret);

    [Fact]
    public async Task CreateToken_ThenUseIt_AllowedByRoleAndListedWithoutSecret()
    {
        await using var host = await AuthTestHost.StartAsync();
        var auth = new AuthService.AuthServiceClient(host.Channel);

        var created = await auth.CreateTokenAsync(new CreateTokenRequest { Name = "ci", Role = TokenRole.Submitter, Ttl = Duration.FromTimeSpan(TimeSpan.FromHours(1)) }, Admin);
        var runs = new RunService.RunServiceClient(host.Channel);
        var submitted = await runs.SubmitRunAsync(new SubmitRunRequest { Spec = Specs.Run(Specs.Shell("a")) }, AuthTestHost.Bearer(created.Token));
        var listed = await auth.ListTokensAsync(new ListTokensRequest(), Admin);

        Assert.StartsWith(TokenSecrets.Prefix, created.Token, StringComparison.Ordinal);
        Assert.True(created.Token.Length >= TokenSecrets.Prefix.Length + 22, "at least 128 random bits");
        Assert.Equal("default", created.Info.Namespace);
        Assert.NotNull(created.Info.ExpiresAt);
        Assert.NotEmpty(submitted.Run.Id);
        Assert.Equal(["admin", "ci"], listed.Tokens.Select(t => t.Name).Order(StringComparer.Ordinal));
        var bytes = listed.ToByteString().ToStringUtf8() + JsonFormatter.Default.Format(listed);
        Assert.DoesNotContain(created.Token, bytes, StringComparison.Ordinal);
        Assert.DoesNotContain(created.Token[TokenSecrets.Prefix.Length..], bytes, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RevokeToken_NextCallOnThisReplica_Unauthenticated()
    {
        await using var host = await AuthTestHost.StartAsync();
        var auth = new AuthService.AuthServiceClient(host.Channel);
        var created = await auth.CreateTokenAsync(new CreateTokenRequest { Name = "ci", Role = TokenRole.Reader }, Admin);
        var runs = new RunService.RunServiceClient(host.Channel);
        await runs.ListRunsAsync(new ListRunsRequest(), AuthTestHost.Bearer(created.Token));

        var revoked = await auth.RevokeTokenAsync(new RevokeTokenRequest { Name = "ci" }, Admin);
        var ex = await Assert.ThrowsAsync<RpcException>(() => runs.ListRunsAsync(new ListRunsRequest(), AuthTestHost.Bearer(created.Token)).ResponseAsync);

        Assert.NotNull(revoked.Info.RevokedAt);
        Assert.Equal(StatusCode.Unauthenticated, ex.StatusCode);
        Assert.Equal(ErrorReason.TokenRevoked, ReasonOf(ex));
    }

    [Theory]
    [InlineData("role", "x", 0, "", "", 0)]
    [InlineData("namespace", "x", (int)TokenRole.Reader, "*", "", 0)]
    [InlineData("namespace", "x", (int)TokenRole.Reader, "Bad NS", "", 0)]
    [InlineData("agent_id", "x", (int)TokenRole.Agent, "", "gpu-*-x", 0)]
    [InlineData("agent_id", "x", (int)TokenRole.Agent, "", "*gpu", 0)]
    [InlineData("agent_id", "x", (int)TokenRole.Reader, "", "agent-1", 0)]
    [InlineData("ttl", "x", (int)TokenRole.Reader, "", "", -5)]
    [InlineData("ttl", "x", (int)TokenRole.Reader, "", "", 400_000_000)]
    [InlineData("name", "Has Spaces", (int)TokenRole.Reader, "", "", 0)]
    [InlineData("name", "a-name-far-longer-than-sixty-three-characters-is-refused-by-the-scheduler", (int)TokenRole.Reader, "", "", 0)]
    public async Task CreateToken_BadField_InvalidArgumentNamingIt(string field, string name, int role, string ns, string agentId, long ttlSeconds)
    {
        await using var host = await AuthTestHost.StartAsync();
        var request = new CreateTokenRequest { Name = name, Role = (TokenRole)role, Namespace = ns, AgentId = agentId };
        if (ttlSeconds != 0)
        {
            request.Ttl = new Duration { Seconds = ttlSeconds };
        }

        var ex = await Assert.ThrowsAsync<RpcException>(() => new AuthService.AuthServiceClient(host.Channel).CreateTokenAsync(request, Admin).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        var violations = ex.GetRpcStatus()!.GetDetail<Google.Rpc.BadRequest>().FieldViolations;
        Assert.Equal([field], violations.Select(v => v.Field));
    }

    [Fact]
    public async Task CreateToken_NameTaken_AlreadyExists()
    {
        await using var host = await AuthTestHost.StartAsync();
        var auth = new AuthService.AuthServiceClient(host.Channel);
        await auth.CreateTokenAsync(new CreateTokenRequest { Name = "ci", Role = TokenRole.Reader }, Admin);

        var ex = await Assert.ThrowsAsync<RpcException>(() => auth.CreateTokenAsync(new CreateTokenRequest { Name = "ci", Role = TokenRole.Submitter }, Admin).ResponseAsync);

        Assert.Equal(StatusCode.AlreadyExists, ex.StatusCode);
    }

    [Fact]
    public async Task Connect_TokenForAgent1_SaysHelloAsAgent2_PermissionDeniedAndNothingRegistered()
    {
        await using var host = await AuthTestHost.StartAsync();
        var secret = await host.AddTokenAsync("agent-1", TokenRole.Agent, agentId: "agent-1");
        var headers = new Metadata { { "authorization", "Bearer " + secret } };

        await using var impostor = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("agent-2"), headers);
        var status = await impostor.Ended.WaitAsync(ServiceTestHost.Timeout);
        var agents = await host.Store.ListAgentsAsync(CancellationToken.None);

        Assert.Equal(StatusCode.PermissionDenied, status.StatusCode);
        Assert.Contains("'agent-2'", status.Detail, StringComparison.Ordinal);
        Assert.Contains("'agent-1'", status.Detail, StringComparison.Ordinal);
        Assert.Empty(agents);
    }

    [Theory]
    [InlineData("gpu-*", "gpu-7", true)]
    [InlineData("gpu-*", "cpu-1", false)]
    [InlineData("agent-1", "agent-1", true)]
    [InlineData("", "anything", true)]
    public async Task Connect_AgentIdPattern_DecidesWhoMayConnect(string pattern, string agentId, bool allowed)
    {
        await using var host = await AuthTestHost.StartAsync();
        var secret = await host.AddTokenAsync("agents", TokenRole.Agent, agentId: pattern.Length == 0 ? null : pattern);

        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello(agentId), new Metadata { { "authorization", "Bearer " + secret } });

        if (allowed)
        {
            var first = await agent.NextAsync().WaitAsync(ServiceTestHost.Timeout);
            Assert.Equal(ConnectResponse.MessageOneofCase.Welcome, first.MessageCase);
        }
        else
        {
            Assert.Equal(StatusCode.PermissionDenied, (await agent.Ended.WaitAsync(ServiceTestHost.Timeout)).StatusCode);
        }
    }

    [Fact]
    public async Task ApproveGate_AuthenticationOn_RecordsTheTokenNameNotTheRequestField()
    {
        await using var host = await AuthTestHost.StartAsync();
        var approver = await host.AddTokenAsync("release-manager", TokenRole.Approver);
        var runs = new RunService.RunServiceClient(host.Channel);
        var run = (await runs.SubmitRunAsync(new SubmitRunRequest { Spec = Specs.Run(Specs.Gate("g")) }, Admin)).Run;

        var decided = await runs.ApproveGateAsync(
            new ApproveGateRequest { RunId = run.Id, StepId = "g", Decision = GateDecision.Approve, DecidedBy = "somebody-else" },
            AuthTestHost.Bearer(approver));

        Assert.Equal("release-manager", decided.Run.Steps.Single(s => s.Id == "g").DecidedBy);
    }

    [Fact]
    public async Task AuthenticationOff_EveryResponse_CarriesTheAuthOffHeader()
    {
        await using var host = await ServiceTestHost.StartAsync();

        using var call = new RunService.RunServiceClient(host.Channel).ListRunsAsync(new ListRunsRequest());
        var headers = await call.ResponseHeadersAsync;

        Assert.Equal("off", headers.GetValue(SchedulerServer.AuthOffHeader));
    }

    [Fact]
    public async Task AuthenticationOn_Responses_CarryNoAuthOffHeader()
    {
        await using var host = await AuthTestHost.StartAsync();

        using var call = new RunService.RunServiceClient(host.Channel).ListRunsAsync(new ListRunsRequest(), Admin);
        var headers = await call.ResponseHeadersAsync;

        Assert.Null(headers.GetValue(SchedulerServer.AuthOffHeader));
    }

    [Theory]
    [InlineData("0.0.0.0:0", false, false, "without TLS and without authentication")]
    [InlineData("0.0.0.0:0", true, false, "without TLS")]
    [InlineData("[::]:0", false, false, "without TLS and without authentication")]
    public void Validate_NonLoopbackWithoutTlsAndAuthentication_RefusedWithHowToFix(string listen, bool admin, bool insecure, string what)
    {
        var options = new SchedulerOptions { Listen = listen, AdminToken = admin ? AuthTestHost.AdminSecret : null, Insecure = insecure };

        var ex = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Contains($"not a loopback address, and the scheduler would serve it {what}", ex.Message, StringComparison.Ordinal);
        Assert.Contains("--insecure", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_NonLoopbackWithInsecure_StartsAndHealthSaysInsecure()
    {
        var options = new SchedulerOptions { Listen = "0.0.0.0:0", Insecure = true };
        await using var server = new SchedulerServer(options);
        await server.StartAsync();

        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{server.Addresses[0].Port}");
        var health = await new Grpc.Health.V1.Health.HealthClient(channel).CheckAsync(new Grpc.Health.V1.HealthCheckRequest());

        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
        Assert.StartsWith("INSECURE", SchedulerHealthCheck.SecurityDescription(options), StringComparison.Ordinal);
        Assert.StartsWith("authentication off", SchedulerHealthCheck.SecurityDescription(new SchedulerOptions()), StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_AdminTokenTooShort_RefusedWithHowToMakeOne()
    {
        var ex = Assert.Throws<ArgumentException>(new SchedulerOptions { AdminToken = "short" }.Validate);

        Assert.Contains("openssl rand", ex.Message, StringComparison.Ordinal);
    }
}
