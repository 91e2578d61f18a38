using System.Globalization;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using StackExchange.Redis;
using Xunit;
using Xunit.Abstractions;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>
/// A claim whose reply is lost on its way back from Redis (the script ran, the client heard nothing), and what the
/// record that makes it repeatable costs.
/// </summary>
public sealed class RedisClaimReplayTests(RedisServerFixture redis, ITestOutputHelper output) : IClassFixture<RedisServerFixture>, IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly RunStoreOptions _options = new() { LeaseDuration = TimeSpan.FromSeconds(30) };
    private readonly string _ns = "claims" + Guid.NewGuid().ToString("N")[..12];
    private ConnectionMultiplexer _direct = null!;
    private RedisRunStore _store = null!;

    public async Task InitializeAsync()
    {
        _direct = await ConnectionMultiplexer.ConnectAsync(RedisRunStore.CreateConfiguration(redis.Configuration));
        _store = new RedisRunStore(_direct, _ns, _options, TimeProvider.System);
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        _direct.Dispose();
    }

    [Fact]
    public async Task Claim_ReplyLostAfterTheScriptRan_SameClaimIdReturnsTheStepAtAttemptOne()
    {
        await using var proxy = new TcpCutProxy(int.Parse(redis.Configuration.Split(':')[1], CultureInfo.InvariantCulture));
        await using var viaProxy = await RedisRunStore.ConnectAsync($"127.0.0.1:{proxy.Port}", _ns, _options, TimeProvider.System);
        var run = (await _store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        var session = await viaProxy.ConnectAgentAsync(new AgentRegistration("agent-1", "h", ["shell"], [], new Dictionary<string, string>(), 1, [], []));
        var assigned = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var subscription = await _store.SubscribeAsync(s =>
        {
            if (s is RunEventsAppended e && e.RunId == run.Id)
            {
                assigned.TrySetResult();
            }
        });
        var request = new ClaimRequest("agent-1", 1) { ClaimId = Guid.NewGuid().ToString("N"), SessionId = session.SessionId };

        // The claim reaches Redis and runs; its reply is dropped on the way back, then the connection breaks.
        proxy.DropRepliesAll();
        var lost = viaProxy.ClaimAsync(request);
        await assigned.Task.WaitAsync(Wait);
        proxy.CutAll();
        var ex = await Assert.ThrowsAsync<RunStoreException>(() => lost);
        var fresh = await UntilAnsweredAsync(() => viaProxy.ClaimAsync(new ClaimRequest("agent-1", 1) { ClaimId = Guid.NewGuid().ToString("N"), SessionId = session.SessionId }));
        var repeated = await viaProxy.ClaimAsync(request);

        Assert.Equal(RunStoreError.Unavailable, ex.Error);
        Assert.Equal(StepState.Assigned, (await _store.GetRunAsync(run.Id))!.Steps[0].State);
        Assert.Empty(fresh);
        var assignment = Assert.Single(repeated);
        Assert.Equal((run.Id, "a", 1), (assignment.RunId, assignment.StepId, assignment.Attempt));
        Assert.Empty(await viaProxy.RenewLeasesAsync("agent-1", [new AttemptRef(run.Id, "a", assignment.FencingToken)]));
    }

    [Fact]
    public async Task Claim_WithAnId_KeepsASmallRecordForTwiceTheLease()
    {
        await _store.SubmitRunAsync(Run([.. Enumerable.Range(0, 64).Select(i => Shell("step-" + i.ToString("D2", CultureInfo.InvariantCulture)))]), null);
        await _store.ConnectAgentAsync(new AgentRegistration("agent-1", "h", ["shell"], [], new Dictionary<string, string>(), 100, [], []));
        var db = _direct.GetDatabase();

        Assert.Single(await _store.ClaimAsync(new ClaimRequest("agent-1", 1) { ClaimId = "one" }));
        Assert.Equal(63, (await _store.ClaimAsync(new ClaimRequest("agent-1", 63) { ClaimId = "many" })).Count);
        Assert.Empty(await _store.ClaimAsync(new ClaimRequest("agent-1", 1) { ClaimId = "none" }));
        var one = (long)await db.ExecuteAsync("MEMORY", "USAGE", Key("one"), "SAMPLES", "0");
        var many = (long)await db.ExecuteAsync("MEMORY", "USAGE", Key("many"), "SAMPLES", "0");
        var ttl = await db.KeyTimeToLiveAsync(Key("one"));

        output.WriteLine($"claim record: {one} bytes for 1 step, {many} bytes for 63 steps ({(many - one) / 62.0:F1} bytes per further step)");
        Assert.InRange(one, 1, 256);
        Assert.InRange(many, 1, 256 + (62 * 64));
        Assert.InRange(ttl!.Value, TimeSpan.FromSeconds(1), 2 * _options.LeaseDuration);
        Assert.False(await db.KeyExistsAsync(Key("none")));
    }

    private string Key(string claimId) => "cp:{" + _ns + "}:cl:" + claimId;

    /// <summary>Repeats a call while the store is unreachable (the client reconnecting after the cut), as the scheduler does.</summary>
    private static async Task<T> UntilAnsweredAsync<T>(Func<Task<T>> call)
    {
        using var timeout = new CancellationTokenSource(Wait);
        while (true)
        {
            try
            {
                return await call();
            }
            catch (RunStoreException ex) when (ex.Error == RunStoreError.Unavailable && !timeout.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50));
            }
        }
    }
}
