using ControlPlane.Scheduler.Security;
using ControlPlane.V1;
using Grpc.Core;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;
using Kind = ControlPlane.V1.ConnectResponse.MessageOneofCase;

namespace ControlPlane.Scheduler.Tests;

/// <summary>
/// One scheduler serves every namespace, and a namespace is the tenancy boundary: runs, agents, secrets, tokens and
/// the audit trail of one are out of reach of a caller of another, over real gRPC calls with authentication on and off.
/// </summary>
public sealed class NamespaceTests
{
    [Fact]
    public async Task TokenOfNamespaceA_RunOfB_CannotSeeWatchOrCancelItAndListsOnlyItsOwn()
    {
        await using var host = await AuthTestHost.StartAsync();
        var a = await host.AddTokenAsync("team-a-ci", TokenRole.Submitter, "a");
        var b = await host.AddTokenAsync("team-b-ci", TokenRole.Submitter, "b");
        var runs = new RunService.RunServiceClient(host.Channel);
        var runOfA = (await runs.SubmitRunAsync(new SubmitRunRequest { Spec = Named("of-a", Gate("g")) }, AuthTestHost.Bearer(a))).Run;
        var runOfB = (await runs.SubmitRunAsync(new SubmitRunRequest { Spec = Named("of-b", Gate("g")) }, AuthTestHost.Bearer(b))).Run;

        var get = await Assert.ThrowsAsync<RpcException>(() => runs.GetRunAsync(new GetRunRequest { RunId = runOfB.Id }, AuthTestHost.Bearer(a)).ResponseAsync);
        var cancel = await Assert.ThrowsAsync<RpcException>(() => runs.CancelRunAsync(new CancelRunRequest { RunId = runOfB.Id }, AuthTestHost.Bearer(a)).ResponseAsync);
        var watch = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = runs.WatchRun(new WatchRunRequest { RunId = runOfB.Id }, AuthTestHost.Bearer(a));
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
            }
        });
        var named = await Assert.ThrowsAsync<RpcException>(() =>
            runs.GetRunAsync(new GetRunRequest { RunId = runOfB.Id }, AuthTestHost.InNamespace("Bearer " + a, "b")).ResponseAsync);
        var listedByA = (await runs.ListRunsAsync(new ListRunsRequest(), AuthTestHost.Bearer(a))).Runs;
        var stillB = (await runs.GetRunAsync(new GetRunRequest { RunId = runOfB.Id }, AuthTestHost.Bearer(b))).Run;

        Assert.Equal(StatusCode.NotFound, get.StatusCode);
        Assert.Equal(StatusCode.NotFound, cancel.StatusCode);
        Assert.Equal(StatusCode.NotFound, watch.StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, named.StatusCode);
        Assert.Equal(ErrorReason.NamespaceNotAllowed, AuthorizationMatrixTests.ReasonOf(named));
        Assert.Equal("b", AuthorizationMatrixTests.InfoOf(named)!.Metadata["requested"]);
        Assert.Equal([runOfA.Id], listedByA.Select(r => r.Id));
        Assert.Equal(RunState.Running, stillB.State);
        Assert.Equal(["a", "b", "default"], host.Server.Namespaces);
    }

    [Fact]
    public async Task AgentOfNamespaceA_StepOfBQueuedFirst_OnlyEverGetsItsOwnNamespacesSteps()
    {
        await using var host = await AuthTestHost.StartAsync(o => o.LeaseDuration = TimeSpan.FromMinutes(5));
        var runs = new RunService.RunServiceClient(host.Channel);
        var submitA = await host.AddTokenAsync("ci-a", TokenRole.Submitter, "a");
        var submitB = await host.AddTokenAsync("ci-b", TokenRole.Submitter, "b");

        // The same agent id in both namespaces: each is its own agent, neither pushes the other off.
        var agentTokenA = await host.AddTokenAsync("agent-a", TokenRole.Agent, "a", agentId: "agent-1");
        var agentTokenB = await host.AddTokenAsync("agent-b", TokenRole.Agent, "b", agentId: "agent-1");
        var runOfB = (await runs.SubmitRunAsync(new SubmitRunRequest { Spec = Named("of-b", Shell("s")) }, AuthTestHost.Bearer(submitB))).Run;

        await using var agentA = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("agent-1", slots: 4), AuthTestHost.Bearer(agentTokenA).Headers);
        var received = new List<ConnectResponse>();
        await agentA.NextAsync(Kind.Welcome);
        var runOfA = (await runs.SubmitRunAsync(new SubmitRunRequest { Spec = Named("of-a", Shell("s")) }, AuthTestHost.Bearer(submitA))).Run;
        var assignedToA = (await agentA.NextAsync(Kind.Assignment, received)).Assignment;
        await using var agentB = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("agent-1", slots: 4), AuthTestHost.Bearer(agentTokenB).Headers);
        var assignedToB = (await agentB.NextAsync(Kind.Assignment)).Assignment;
        var agentsOfA = await new AdminService.AdminServiceClient(host.Channel).ListAgentsAsync(new ListAgentsRequest(), AuthTestHost.InNamespace("Bearer " + AuthTestHost.AdminSecret, "a"));

        Assert.Equal(runOfA.Id, assignedToA.RunId);
        Assert.DoesNotContain(received, m => m.MessageCase == Kind.Assignment);
        Assert.Equal(runOfB.Id, assignedToB.RunId);
        Assert.False(agentA.Ended.IsCompleted, "agent-1 of b pushed agent-1 of a off");
        Assert.Equal(["agent-1"], agentsOfA.Agents.Select(x => x.AgentId));
    }

    [Fact]
    public async Task AuthenticationOff_HeaderAloneDecides_AndAMalformedHeaderIsInvalidArgument()
    {
        await using var host = await AuthTestHost.StartAsync(o => o.AdminToken = null);
        var runs = new RunService.RunServiceClient(host.Channel);
        var inX = (await runs.SubmitRunAsync(new SubmitRunRequest { Spec = Named("x", Gate("g")) }, AuthTestHost.InNamespace(null, "x"))).Run;

        var listedInX = (await runs.ListRunsAsync(new ListRunsRequest(), AuthTestHost.InNamespace(null, "x"))).Runs;
        var listedInDefault = (await runs.ListRunsAsync(new ListRunsRequest(), AuthTestHost.With(null))).Runs;
        var bad = await Assert.ThrowsAsync<RpcException>(() => runs.ListRunsAsync(new ListRunsRequest(), AuthTestHost.InNamespace(null, "Team A")).ResponseAsync);

        Assert.Equal([inX.Id], listedInX.Select(r => r.Id));
        Assert.Empty(listedInDefault);
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        Assert.Equal(CallNamespace.Header, Assert.Single(bad.GetRpcStatus()!.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations).Field);
    }

    [Fact]
    public async Task SecretsAndAudit_OfNamespaceA_AreNotThoseOfB()
    {
        await using var host = await AuthTestHost.StartAsync();
        var adminA = AuthTestHost.Bearer(await host.AddTokenAsync("admin-a", TokenRole.Admin, "a"));
        var adminB = AuthTestHost.Bearer(await host.AddTokenAsync("admin-b", TokenRole.Admin, "b"));
        var secrets = new SecretService.SecretServiceClient(host.Channel);
        await secrets.SetSecretAsync(new SetSecretRequest { Name = "db-password", Value = Google.Protobuf.ByteString.CopyFromUtf8("hunter2") }, adminA);

        var listedInB = (await secrets.ListSecretsAsync(new ListSecretsRequest(), adminB)).Secrets;
        var submitInB = await Assert.ThrowsAsync<RpcException>(() => new RunService.RunServiceClient(host.Channel).SubmitRunAsync(
            new SubmitRunRequest { Spec = Named("uses", Shell("s").With(s => s.Secrets.Add("db-password"))) }, adminB).ResponseAsync);
        var auditOfA = (await new AuditService.AuditServiceClient(host.Channel).ListAuditAsync(new ListAuditRequest(), adminA)).Entries;
        var auditOfB = (await new AuditService.AuditServiceClient(host.Channel).ListAuditAsync(new ListAuditRequest(), adminB)).Entries;

        Assert.Empty(listedInB);
        Assert.Equal(StatusCode.InvalidArgument, submitInB.StatusCode);
        Assert.Contains(auditOfA, e => e.Action == "secret.set" && e.Target == "db-password");
        Assert.DoesNotContain(auditOfB, e => e.Action == "secret.set");
    }

    [Fact]
    public async Task AdminOfNamespaceA_Tokens_SeesAndMakesOnlyItsOwn()
    {
        await using var host = await AuthTestHost.StartAsync();
        var adminA = AuthTestHost.Bearer(await host.AddTokenAsync("admin-a", TokenRole.Admin, "a"));
        await host.AddTokenAsync("reader-b", TokenRole.Reader, "b");
        var auth = new AuthService.AuthServiceClient(host.Channel);

        var created = (await auth.CreateTokenAsync(new CreateTokenRequest { Role = TokenRole.Admin, Name = "second-admin" }, adminA)).Info;
        var listed = (await auth.ListTokensAsync(new ListTokensRequest(), adminA)).Tokens;
        var inB = await Assert.ThrowsAsync<RpcException>(() => auth.CreateTokenAsync(new CreateTokenRequest { Role = TokenRole.Reader, Namespace = "b" }, adminA).ResponseAsync);
        var everywhere = await Assert.ThrowsAsync<RpcException>(() => auth.CreateTokenAsync(new CreateTokenRequest { Role = TokenRole.Admin, Namespace = "*" }, adminA).ResponseAsync);
        var revokeB = await Assert.ThrowsAsync<RpcException>(() => auth.RevokeTokenAsync(new RevokeTokenRequest { Name = "reader-b", Namespace = "b" }, adminA).ResponseAsync);
        var listedByAll = (await auth.ListTokensAsync(new ListTokensRequest(), AuthTestHost.Bearer(AuthTestHost.AdminSecret))).Tokens;

        Assert.Equal("a", created.Namespace);
        Assert.All(listed, t => Assert.Equal("a", t.Namespace));
        Assert.Equal(["admin-a", "second-admin"], listed.Select(t => t.Name).Order(StringComparer.Ordinal));
        Assert.Equal(StatusCode.PermissionDenied, inB.StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, everywhere.StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, revokeB.StatusCode);
        Assert.Contains(listedByAll, t => t.Name == "reader-b" && t.RevokedAt is null);
    }

    [Fact]
    public async Task ReadInANamespaceThatDoesNotExist_NotFoundNamingIt_AndNothingIsCreated()
    {
        await using var host = await AuthTestHost.StartAsync(o => o.AdminToken = null);
        var runs = new RunService.RunServiceClient(host.Channel);

        var list = await Assert.ThrowsAsync<RpcException>(() => runs.ListRunsAsync(new ListRunsRequest(), AuthTestHost.InNamespace(null, "tpyo")).ResponseAsync);
        var agents = await Assert.ThrowsAsync<RpcException>(() => new AdminService.AdminServiceClient(host.Channel).ListAgentsAsync(new ListAgentsRequest(), AuthTestHost.InNamespace(null, "tpyo")).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, list.StatusCode);
        Assert.Equal(ErrorReason.NamespaceNotFound, AuthorizationMatrixTests.ReasonOf(list));
        Assert.Contains("namespace 'tpyo' does not exist", list.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.NotFound, agents.StatusCode);
        Assert.Equal(["default"], host.Server.Namespaces);
        Assert.Equal(["default"], await host.Stores.ListAsync());
    }

    [Fact]
    public async Task CreateTokenOfANewNamespacePastTheLimit_ResourceExhaustedAndNoTokenIsStored()
    {
        await using var host = await AuthTestHost.StartAsync(maxNamespaces: 2);
        var admin = AuthTestHost.Bearer(AuthTestHost.AdminSecret);
        var auth = new AuthService.AuthServiceClient(host.Channel);
        await auth.CreateTokenAsync(new CreateTokenRequest { Role = TokenRole.Reader, Namespace = "a", Name = "reader-a" }, admin);

        var third = await Assert.ThrowsAsync<RpcException>(() => auth.CreateTokenAsync(new CreateTokenRequest { Role = TokenRole.Reader, Namespace = "b", Name = "reader-b" }, admin).ResponseAsync);
        var submit = await Assert.ThrowsAsync<RpcException>(() => new RunService.RunServiceClient(host.Channel).SubmitRunAsync(
            new SubmitRunRequest { Spec = Named("x", Gate("g")) }, AuthTestHost.InNamespace("Bearer " + AuthTestHost.AdminSecret, "c")).ResponseAsync);
        var tokens = (await auth.ListTokensAsync(new ListTokensRequest(), admin)).Tokens;

        Assert.Equal(StatusCode.ResourceExhausted, third.StatusCode);
        Assert.Equal(StatusCode.ResourceExhausted, submit.StatusCode);
        Assert.DoesNotContain(tokens, t => t.Namespace == "b");
        Assert.Equal(["a", "default"], host.Server.Namespaces);
    }

    [Fact]
    public async Task RevokeTokenNamingNoNamespace_CallNamesOne_RevokesOnlyThere()
    {
        await using var host = await AuthTestHost.StartAsync();
        await host.AddTokenAsync("ci", TokenRole.Submitter, "c");
        var auth = new AuthService.AuthServiceClient(host.Channel);

        var inB = await Assert.ThrowsAsync<RpcException>(() => auth.RevokeTokenAsync(new RevokeTokenRequest { Name = "ci" }, AuthTestHost.InNamespace("Bearer " + AuthTestHost.AdminSecret, "b")).ResponseAsync);
        var inC = (await auth.RevokeTokenAsync(new RevokeTokenRequest { Name = "ci" }, AuthTestHost.InNamespace("Bearer " + AuthTestHost.AdminSecret, "c"))).Info;

        Assert.Equal(StatusCode.NotFound, inB.StatusCode);
        Assert.Equal("c", inC.Namespace);
        Assert.NotNull(inC.RevokedAt);
    }

    [Fact]
    public async Task SealedSecretCopiedIntoAnotherNamespace_DoesNotOpenThere()
    {
        var secretStores = new System.Collections.Concurrent.ConcurrentDictionary<string, EmbeddedSecretStore>(StringComparer.Ordinal);
        var options = new SchedulerOptions { Listen = "127.0.0.1:0", LeaseDuration = TimeSpan.FromMinutes(5) };
        await using var stores = new EmbeddedNamespaceStores(options.CreateStoreOptions());
        await using var server = new SchedulerServer(options, stores) { SecretStores = ns => secretStores.GetOrAdd(ns, _ => new EmbeddedSecretStore()) };
        await server.StartAsync();
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(server.Addresses[0].ToString());
        var inA = AuthTestHost.InNamespace(null, "a");
        var inB = AuthTestHost.InNamespace(null, "b");
        await new SecretService.SecretServiceClient(channel).SetSecretAsync(new SetSecretRequest { Name = "db-password", Value = Google.Protobuf.ByteString.CopyFromUtf8("hunter2") }, inA);
        var runs = new RunService.RunServiceClient(channel);
        await runs.SubmitRunAsync(new SubmitRunRequest { Spec = Named("b-first", Gate("g")) }, inB);

        // Someone with write access to the store copies a's sealed value, unchanged, under the same name into b.
        var sealedInA = (await secretStores["a"].GetSecretsAsync(["db-password"], CancellationToken.None))["db-password"];
        await secretStores["b"].PutSecretAsync(sealedInA, CancellationToken.None);
        var uses = Named("uses", Shell("s").With(s => s.Secrets.Add("db-password")));
        await runs.SubmitRunAsync(new SubmitRunRequest { Spec = uses }, inA);
        await runs.SubmitRunAsync(new SubmitRunRequest { Spec = uses }, inB);
        await using var agentA = await ServiceScriptedAgent.ConnectAsync(channel, ServiceScriptedAgent.Hello("agent-a"), inA.Headers);
        await using var agentB = await ServiceScriptedAgent.ConnectAsync(channel, ServiceScriptedAgent.Hello("agent-b"), inB.Headers);
        var assignedInA = (await agentA.NextAsync(Kind.Assignment)).Assignment;
        var assignedInB = (await agentB.NextAsync(Kind.Assignment)).Assignment;

        Assert.Equal("hunter2", assignedInA.Secrets["db-password"].ToStringUtf8());
        Assert.Empty(assignedInB.Secrets);
    }

    [Fact]
    public async Task ValueSealedBeforeNamespaces_OpensInTheDefaultNamespaceOnly()
    {
        var key = System.Security.Cryptography.RandomNumberGenerator.GetBytes(SecretCipher.KeyLength);
        var keyFile = Path.Combine(Path.GetTempPath(), "cp-ns-key-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllBytesAsync(keyFile, key);
        try
        {
            var secretStores = new System.Collections.Concurrent.ConcurrentDictionary<string, EmbeddedSecretStore>(StringComparer.Ordinal);
            var options = new SchedulerOptions { Listen = "127.0.0.1:0", LeaseDuration = TimeSpan.FromMinutes(5), SecretsKeyFile = keyFile };
            await using var stores = new EmbeddedNamespaceStores(options.CreateStoreOptions());
            await using var server = new SchedulerServer(options, stores) { SecretStores = ns => secretStores.GetOrAdd(ns, _ => new EmbeddedSecretStore()) };
            await server.StartAsync();
            using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(server.Addresses[0].ToString());
            var runs = new RunService.RunServiceClient(channel);
            await runs.SubmitRunAsync(new SubmitRunRequest { Spec = Named("b-first", Gate("g")) }, AuthTestHost.InNamespace(null, "b"));

            // A value an older build sealed for its name alone, when every secret was the default namespace's.
            using var cipher = new SecretCipher(key);
            var now = DateTimeOffset.UtcNow;
            var legacy = new SecretRecord("db-password", cipher.Seal("db-password", "hunter2"u8), [], now, now);
            await secretStores["default"].PutSecretAsync(legacy, CancellationToken.None);
            await secretStores["b"].PutSecretAsync(legacy, CancellationToken.None);
            var uses = Named("uses", Shell("s").With(s => s.Secrets.Add("db-password")));
            await runs.SubmitRunAsync(new SubmitRunRequest { Spec = uses }, AuthTestHost.With(null));
            await runs.SubmitRunAsync(new SubmitRunRequest { Spec = uses }, AuthTestHost.InNamespace(null, "b"));
            await using var agentDefault = await ServiceScriptedAgent.ConnectAsync(channel, ServiceScriptedAgent.Hello("agent-d"));
            await using var agentB = await ServiceScriptedAgent.ConnectAsync(channel, ServiceScriptedAgent.Hello("agent-b"), AuthTestHost.InNamespace(null, "b").Headers);

            Assert.Equal("hunter2", (await agentDefault.NextAsync(Kind.Assignment)).Assignment.Secrets["db-password"].ToStringUtf8());
            Assert.Empty((await agentB.NextAsync(Kind.Assignment)).Assignment.Secrets);
        }
        finally
        {
            File.Delete(keyFile);
        }
    }
}

