using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>WatchRuns across two scheduler replicas sharing one Redis: a change made through one reaches a watcher on the other.</summary>
public sealed class RedisWatchRunsReplicaTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task WatchRuns_ChangeThroughReplicaA_SeenByWatcherOnReplicaB()
    {
        // A recheck far longer than the test: only the pub/sub wake-up (and the shared feed) can bring the change in time.
        SchedulerOptions Options() => new()
        {
            Listen = "127.0.0.1:0",
            HttpListen = "off",
            Namespace = "w" + Guid.NewGuid().ToString("N")[..8],
            WatchRecheckInterval = TimeSpan.FromMinutes(5),
        };
        var optionsA = Options();
        var optionsB = Options();
        optionsB.Namespace = optionsA.Namespace;
        // Each replica with its own connection, as two processes have.
        await using var storesA = await RedisNamespaceStores.ConnectAsync(redis.Configuration, optionsA.CreateStoreOptions(), NullLogger.Instance);
        await using var storesB = await RedisNamespaceStores.ConnectAsync(redis.Configuration, optionsB.CreateStoreOptions(), NullLogger.Instance);
        await using var a = new SchedulerServer(optionsA, storesA);
        await using var b = new SchedulerServer(optionsB, storesB);
        await a.StartAsync();
        await b.StartAsync();
        using var channelA = GrpcChannel.ForAddress(a.Addresses[0].ToString());
        using var channelB = GrpcChannel.ForAddress(b.Addresses[0].ToString());
        var clientA = new RunService.RunServiceClient(channelA);
        var clientB = new RunService.RunServiceClient(channelB);

        var before = (await clientA.SubmitRunAsync(new SubmitRunRequest { Spec = GateRun("before") })).Run;
        using var watch = clientB.WatchRuns(new WatchRunsRequest());
        var snapshot = await ReadUntilAsync(watch, m => m.CaughtUp);
        Assert.Equal([before.Id], snapshot.Where(m => m.Run is not null).Select(m => m.Run.Id));

        var added = (await clientA.SubmitRunAsync(new SubmitRunRequest { Spec = GateRun("added") })).Run;
        await ReadUntilAsync(watch, m => m.Run?.Id == added.Id);

        await clientA.ApproveGateAsync(new ApproveGateRequest { RunId = before.Id, StepId = "g", Decision = GateDecision.Approve });
        var finished = await ReadUntilAsync(watch, m => m.Run?.Id == before.Id && m.Run.State == RunState.Succeeded);
        Assert.NotEmpty(finished[^1].Cursor);
    }

    private static RunSpec GateRun(string name) => new() { Name = name, Steps = { new StepSpec { Id = "g", Kind = StepKind.Gate } } };

    private static async Task<List<WatchRunsResponse>> ReadUntilAsync(AsyncServerStreamingCall<WatchRunsResponse> call, Func<WatchRunsResponse, bool> until)
    {
        var read = new List<WatchRunsResponse>();
        while (true)
        {
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout), "the stream ended");
            read.Add(call.ResponseStream.Current);
            if (until(read[^1]))
            {
                return read;
            }
        }
    }
}
