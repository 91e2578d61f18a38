using ControlPlane.Client;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Grpc.Core;
using Grpc.Net.Client;
using StackExchange.Redis;
using Xunit;
using static ControlPlane.FunctionalTests.FunctionalCluster;
using static ControlPlane.FunctionalTests.FunctionalSpecs;

namespace ControlPlane.FunctionalTests;

/// <summary>
/// Namespaces with real processes and a real Redis: one cp-scheduler (or two replicas) serves every namespace, each
/// call acts in its token's namespace, and cp-agent processes of one namespace (agent tokens of it) run its steps only.
/// </summary>
[Collection(FunctionalTestGroup.Name)]
public sealed class NamespaceTests(RedisServerFixture redis)
{
    private const string Admin = "cpt_functional-admin-namespaces-0123456789";

    /// <summary>The variable each agent passes to its steps (--pass-env): which agent process ran a step.</summary>
    private const string Mark = "NS_AGENT_MARK";

    /// <summary>The Redis set of every namespace a scheduler opened.</summary>
    private const string Registry = "cp:{_namespaces}:all";

    [Fact]
    public async Task SubmitterOfA_RunOfB_NotFoundForGetWatchCancel_ListsOnlyItsOwn_NamingBIsDenied()
    {
        await using var cluster = await FunctionalCluster.StartAuthenticatedAsync(redis, Admin);
        var (a, b) = (Unique("a"), Unique("b"));
        var tokenA = await SubmitterTokenAsync(cluster, a, "ci-a");
        using var clientA = ClientOf(cluster, tokenA);
        using var clientB = ClientOf(cluster, await SubmitterTokenAsync(cluster, b, "ci-b"));
        var runOfA = (await clientA.SubmitRunAsync(Spec("of-a", Gate("g")))).Run;
        var runOfB = (await clientB.SubmitRunAsync(Spec("of-b", Gate("g")))).Run;
        var runOfDefault = (await cluster.Client.SubmitRunAsync(Spec("of-default", Gate("g")))).Run;
        await cluster.WaitForRunAsync(runOfB.Id, r => r.Steps[0].State == StepState.WaitingApproval, "b's gate waiting", clientB);

        var get = await Assert.ThrowsAsync<RpcException>(() => clientA.GetRunAsync(runOfB.Id));
        var watch = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var e in clientA.WatchRunAsync(runOfB.Id))
            {
            }
        });
        var cancel = await Assert.ThrowsAsync<RpcException>(() => clientA.CancelRunAsync(runOfB.Id, "not yours"));
        var listedByA = (await clientA.ListRunsAsync(new ListRunsRequest())).Runs;

        // a's token naming b in the cp-namespace header, over a plain gRPC channel.
        using var channel = GrpcChannel.ForAddress(cluster.Address);
        var naming = new Metadata { { "authorization", "Bearer " + tokenA }, { "cp-namespace", b } };
        var named = await Assert.ThrowsAsync<RpcException>(() =>
            new RunService.RunServiceClient(channel).GetRunAsync(new GetRunRequest { RunId = runOfB.Id }, naming).ResponseAsync);
        var stillB = await clientB.GetRunAsync(runOfB.Id);

        Assert.Equal(StatusCode.NotFound, get.StatusCode);
        Assert.Equal(StatusCode.NotFound, watch.StatusCode);
        Assert.Equal(StatusCode.NotFound, cancel.StatusCode);
        Assert.Equal([runOfA.Id], listedByA.Select(r => r.Id));
        Assert.DoesNotContain(runOfDefault.Id, listedByA.Select(r => r.Id));
        Assert.Equal(StatusCode.PermissionDenied, named.StatusCode);
        Assert.Equal(ErrorReason.NamespaceNotAllowed, named.GetErrorReason());
        Assert.Equal(RunState.Running, stillB.State);
        Assert.Equal(StepState.WaitingApproval, stillB.Steps[0].State);
        Assert.DoesNotContain(stillB.Steps[0].History, h => h.ToState.Contains("CANCEL", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SameAgentIdInAAndB_RunsOfBQueuedFirst_EveryStepRunsOnItsNamespacesAgentProcess_KeysUnderItsNamespace()
    {
        await using var cluster = await FunctionalCluster.StartAuthenticatedAsync(redis, Admin);
        var (a, b) = (Unique("a"), Unique("b"));
        using var clientA = ClientOf(cluster, await SubmitterTokenAsync(cluster, a, "ci-a"));
        using var clientB = ClientOf(cluster, await SubmitterTokenAsync(cluster, b, "ci-b"));
        var agentTokenA = await AgentTokenAsync(cluster, a, "agent-1");
        var agentTokenB = await AgentTokenAsync(cluster, b, "agent-1");
        var agentA = await StartAgentAsync(cluster, "agent-1", a, agentTokenA, cluster.Address);
        using var connection = await ConnectionMultiplexer.ConnectAsync(redis.Configuration + ",allowAdmin=true");
        var server = connection.GetServer(connection.GetEndPoints()[0]);
        var keysBefore = server.Keys(pattern: "*", pageSize: 1000).Select(k => (string)k!).ToHashSet(StringComparer.Ordinal);

        // Namespaces earlier tests left on this Redis: this scheduler serves them too (it reaps every registered
        // namespace), so their leftover runs may write under their own prefixes while this test runs.
        var othersBefore = (await connection.GetDatabase().SetMembersAsync(Registry)).Select(m => (string)m!).Where(n => n != a && n != cluster.Namespace).ToList();

        // b's runs are queued while a's agent is connected and idle: it must leave them to b's agent.
        var runsOfB = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            runsOfB.Add((await clientB.SubmitRunAsync(MarkedSpec($"b-{i}"))).Run.Id);
        }

        var runsOfA = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            runsOfA.Add((await clientA.SubmitRunAsync(MarkedSpec($"a-{i}"))).Run.Id);
        }

        var doneOfA = new List<Run>();
        foreach (var id in runsOfA)
        {
            doneOfA.Add(await cluster.WaitForStateAsync(id, RunState.Succeeded, clientA));
        }

        var bWhileOnlyAHadAnAgent = new List<Run>();
        foreach (var id in runsOfB)
        {
            bWhileOnlyAHadAnAgent.Add(await clientB.GetRunAsync(id));
        }

        await StartAgentAsync(cluster, "agent-1", b, agentTokenB, cluster.Address);
        var doneOfB = new List<Run>();
        foreach (var id in runsOfB)
        {
            doneOfB.Add(await cluster.WaitForStateAsync(id, RunState.Succeeded, clientB));
        }

        var agentsOfA = await clientA.ListAgentsAsync();
        var agentsOfB = await clientB.ListAgentsAsync();

        // Steps: b's were never started before b's agent came; each ran as agent-1 in its own agent process.
        Assert.Empty(bWhileOnlyAHadAnAgent.SelectMany(r => r.Steps
            .Where(s => s.AgentId.Length > 0 || s.State is not (StepState.Ready or StepState.Blocked))
            .Select(s => $"{r.Name}/{s.Id}: {s.State} on '{s.AgentId}'")));
        await AssertRanOnAsync(clientA, doneOfA, a, cluster.Path2("work-" + a));
        await AssertRanOnAsync(clientB, doneOfB, b, cluster.Path2("work-" + b));
        Assert.Equal(AgentState.Connected, Assert.Single(agentsOfA).State);
        Assert.Equal(AgentState.Connected, Assert.Single(agentsOfB).State);
        Assert.False(agentA.Exited.IsCompleted, "a's agent-1 exited");
        Assert.DoesNotContain("opened a newer stream", agentA.Output, StringComparison.Ordinal);

        // Keys: whatever the runs wrote lives under their namespace's prefix (its own cluster slot).
        var keysAfter = server.Keys(pattern: "*", pageSize: 1000).Select(k => (string)k!).ToList();
        foreach (var (ns, ids) in new[] { (a, runsOfA), (b, runsOfB) })
        {
            foreach (var id in ids)
            {
                var ofRun = keysAfter.Where(k => k.Contains(id, StringComparison.Ordinal)).ToList();
                Assert.Contains($"cp:{{{ns}}}:r:{id}", ofRun);
                Assert.All(ofRun, k => Assert.StartsWith($"cp:{{{ns}}}:", k, StringComparison.Ordinal));
            }

            Assert.Contains($"cp:{{{ns}}}:ag:agent-1", keysAfter);
        }

        // Nothing new in the scheduler's default namespace or outside any namespace.
        var allowed = othersBefore.Append(a).Append(b).Select(n => $"cp:{{{n}}}:").ToList();
        var newKeys = keysAfter.Where(k => !keysBefore.Contains(k)).ToList();
        Assert.NotEmpty(newKeys);
        Assert.All(newKeys, k => Assert.True(
            allowed.Exists(p => k.StartsWith(p, StringComparison.Ordinal)),
            $"the runs of {a} and {b} made key {k}, outside both namespaces"));
        var registry = (await connection.GetDatabase().SetMembersAsync(Registry)).Select(m => (string)m!).ToList();
        Assert.Contains(a, registry);
        Assert.Contains(b, registry);
        Assert.Contains(cluster.Namespace, registry);
    }

    [Fact]
    public async Task NamespaceCalledOnlyOnReplica1_Replica1Killed_ItsAgentMovesToReplica2WhereItsRunsSucceed()
    {
        await using var cluster = await FunctionalCluster.StartAuthenticatedAsync(redis, Admin);
        var (replica2, port2) = await cluster.StartReplicaAsync();
        var address2 = $"http://127.0.0.1:{port2}";
        var c = Unique("c");
        var submitToken = await SubmitterTokenAsync(cluster, c, "ci-c");
        var agent = await StartAgentAsync(cluster, "agent-1", c, await AgentTokenAsync(cluster, c, "agent-1"), $"{cluster.Address},{address2}");
        var release = cluster.Path2("release");
        var spec = Spec("across-the-kill", Shell("s", $"while [ ! -f '{release}' ]; do sleep 0.05; done; printf \"%s\" \"${Mark}\" > \"$CP_OUTPUT_FILE\""));
        spec.Steps[0].KeepOutput = true;
        Run running;
        using (var onReplica1 = ClientOf(cluster, submitToken))
        {
            running = (await onReplica1.SubmitRunAsync(spec)).Run;
            await cluster.WaitForRunAsync(running.Id, r => r.Steps[0].State == StepState.Running, "the step running", onReplica1);
        }

        // Replica 2 picks c up from the registry without any call naming it there.
        await replica2.WaitForLineAsync(l => l.Contains($"Serving namespace {c}, opened by another replica", StringComparison.Ordinal), FunctionalCluster.Timeout, $"replica 2 serving {c}");
        // kill -9 of replica 1: nothing ends the agent's stream; it finds replica 2 in its --scheduler list.
        await cluster.Scheduler.SignalAsync("KILL");
        await cluster.Scheduler.Exited.WaitAsync(FunctionalCluster.Timeout);
        cluster.UseReplica(replica2, port2);
        await WaitConnectedAsync(agent, 2);
        using var onReplica2 = ClientOf(cluster, submitToken);
        await File.WriteAllTextAsync(release, "");
        var movedRun = await cluster.WaitForStateAsync(running.Id, RunState.Succeeded, onReplica2);
        var afterKill = (await onReplica2.SubmitRunAsync(MarkedSpec("after-the-kill"))).Run;
        var doneAfterKill = await cluster.WaitForStateAsync(afterKill.Id, RunState.Succeeded, onReplica2);

        Assert.Equal(1, movedRun.Steps[0].Attempt);
        Assert.Equal(c, (await onReplica2.GetStepOutputAsync(running.Id, "s")).Data.ToStringUtf8());
        await AssertRanOnAsync(onReplica2, [doneAfterKill], c, cluster.Path2("work-" + c));
    }

    /// <summary>A namespace name of this test alone: every test shares one Redis.</summary>
    private static string Unique(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>Three shell steps (one, then two after it) that each write which agent process ran them and where.</summary>
    private static RunSpec MarkedSpec(string name)
    {
        const string Write = "printf '%s|%s' \"$" + Mark + "\" \"$CP_WORK_DIR\" > \"$CP_OUTPUT_FILE\"";
        var spec = Spec(name, Shell("first", Write), Shell("second", Write, "first"), Shell("third", Write, "first"));
        foreach (var step in spec.Steps)
        {
            step.KeepOutput = true;
        }

        return spec;
    }

    /// <summary>Every step of <paramref name="runs"/> ran as agent-1 in the process started for <paramref name="ns"/>: its mark, under its work root.</summary>
    private static async Task AssertRanOnAsync(ControlPlaneClient client, IReadOnlyList<Run> runs, string ns, string workRoot)
    {
        foreach (var run in runs)
        {
            Assert.Equal(RunState.Succeeded, run.State);
            foreach (var step in run.Steps)
            {
                Assert.Equal("agent-1", step.AgentId);
                var written = (await client.GetStepOutputAsync(run.Id, step.Id)).Data.ToStringUtf8().Split('|');
                Assert.Equal(ns, written[0]);
                Assert.StartsWith(workRoot + "/", written[1], StringComparison.Ordinal);
            }
        }
    }

    /// <summary>A new submitter token of <paramref name="ns"/>, made by the admin (a token of every namespace).</summary>
    private static async Task<string> SubmitterTokenAsync(FunctionalCluster cluster, string ns, string name)
    {
        var created = await cluster.Client.CreateTokenAsync(new CreateTokenRequest { Role = TokenRole.Submitter, Name = name, Namespace = ns });
        Assert.Equal(ns, created.Info.Namespace);
        return created.Token;
    }

    /// <summary>A client of the cluster's scheduler (now) sending <paramref name="token"/> and no cp-namespace header.</summary>
    private static ControlPlaneClient ClientOf(FunctionalCluster cluster, string token) =>
        new(new ControlPlaneClientOptions { Address = cluster.Address, BearerToken = token });

    /// <summary>An agent token of <paramref name="ns"/> for <paramref name="agentId"/>, in a file only this user reads.</summary>
    private static async Task<string> AgentTokenAsync(FunctionalCluster cluster, string ns, string agentId)
    {
        var created = await cluster.Client.CreateTokenAsync(new CreateTokenRequest { Role = TokenRole.Agent, Name = $"{ns}-{agentId}", Namespace = ns, AgentId = agentId });
        return cluster.WriteSecret($"{ns}-{agentId}.token", created.Token);
    }

    /// <summary>
    /// A cp-agent process with an agent token of <paramref name="ns"/>, its own work root, and <see cref="Mark"/> set to
    /// <paramref name="ns"/> and passed to its steps (--pass-env), so a step's output says which process ran it.
    /// </summary>
    private static async Task<ObservedProcess> StartAgentAsync(FunctionalCluster cluster, string id, string ns, string tokenFile, string schedulers)
    {
        var agent = ObservedProcess.Start($"agent {id} of {ns}", AgentPath,
            ["--scheduler", schedulers, "--agent-id", id, "--slots", "2", "--work-root", cluster.Path2("work-" + ns), "--token-file", tokenFile, "--pass-env", Mark],
            environment: new Dictionary<string, string>
            {
                [Mark] = ns,
                ["CP_MAX_RECONNECT_DELAY"] = "1s",
                ["CP_KILL_GRACE_PERIOD"] = "2s",
            });
        cluster.Own(agent);
        cluster.Agents[ns + "/" + id] = agent;
        await WaitConnectedAsync(agent, 1);
        return agent;
    }
}
