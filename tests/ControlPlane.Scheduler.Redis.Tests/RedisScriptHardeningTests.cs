using System.Globalization;
using ControlPlane.Scheduler.Redis.Internal;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using StackExchange.Redis;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>
/// The scripts themselves, fed what the store never sends and data an older version may have left behind: no script
/// fails half-way, and one bad item never costs the other items of its call.
/// </summary>
public sealed class RedisScriptHardeningTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>, IAsyncLifetime
{
    private static readonly LuaScripts Scripts = new();
    private readonly ManualTimeProvider _time = new();
    private readonly RunStoreOptions _options = new() { LeaseDuration = TimeSpan.FromSeconds(30) };
    private ConnectionMultiplexer _connection = null!;
    private RedisRunStore _store = null!;

    private IDatabase Db => _connection.GetDatabase();

    public async Task InitializeAsync()
    {
        _connection = await ConnectionMultiplexer.ConnectAsync(RedisRunStore.CreateConfiguration(redis.Configuration));
        _store = new RedisRunStore(_connection, "h" + Guid.NewGuid().ToString("N")[..12], _options, _time);
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        _connection.Dispose();
    }

    [Fact]
    public async Task Maintenance_OneRunsEventCounterBehindItsStream_OtherRunsLeasesStillExpire()
    {
        var poisoned = (await _store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        var healthy = (await _store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        await Connect(slots: 2);
        Assert.Equal(2, (await _store.ClaimAsync(new ClaimRequest("agent-1", 2))).Count);
        // What a script that failed after its first event left behind: the stream runs ahead of the run's counter.
        await Db.HashSetAsync(_store.KeyPrefix + "r:" + poisoned.Id, "_seq", 1);
        _time.Advance(_options.LeaseDuration + TimeSpan.FromSeconds(1));

        var reaped = await _store.RunMaintenanceAsync(100);

        Assert.Equal(2, reaped.LeasesExpired);
        Assert.Equal(StepState.Ready, (await _store.GetRunAsync(healthy.Id))!.Steps[0].State);
        var repaired = (await _store.GetRunAsync(poisoned.Id))!;
        Assert.Equal(StepState.Ready, repaired.Steps[0].State);
        await AssertSettlesAsync(poisoned.Id);
        await AssertSettlesAsync(healthy.Id);
    }

    [Fact]
    public async Task Maintenance_MalformedLeaseMembers_DroppedAndOtherLeasesExpire()
    {
        var run = (await _store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        await Connect(slots: 1);
        Assert.Single(await _store.ClaimAsync(new ClaimRequest("agent-1", 1)));
        foreach (var key in new[] { "leases", "timeouts" })
        {
            await Db.SortedSetAddAsync(_store.KeyPrefix + key, [new("garbage", 0), new("1|only-two", 0), new("2|no-such-run|a", 0)]);
        }

        await Db.SortedSetAddAsync(_store.KeyPrefix + "retry", [new("garbage", 0), new("no-such-run|a", 0)]);
        _time.Advance(_options.LeaseDuration + TimeSpan.FromSeconds(1));

        var reaped = await _store.RunMaintenanceAsync(100);

        Assert.Equal(1, reaped.LeasesExpired);
        Assert.Equal(StepState.Ready, (await _store.GetRunAsync(run.Id))!.Steps[0].State);
        Assert.Equal(0, await Db.SortedSetLengthAsync(_store.KeyPrefix + "leases"));
        Assert.Equal(0, await Db.SortedSetLengthAsync(_store.KeyPrefix + "timeouts"));
        Assert.Equal(0, await Db.SortedSetLengthAsync(_store.KeyPrefix + "retry"));
    }

    /// <summary>Report arguments (kind, a1, a2, a3) about step "a" that the C# side never builds.</summary>
    public static TheoryData<string, string, string, string> RawReports() => new()
    {
        { "P", "nan", "", "" },
        { "P", "inf", "", "" },
        { "P", "-inf", "", "" },
        { "P", "not a number", "", "" },
        { "L", "1", "not json", "" },
        { "L", "1", "[\"\\ud800\"]", "" },
        { "L", "1", "{\"a\":1}", "" },
        { "L", "1", "[1,{},[]]", "" },
        { "L", "x", "[\"line\"]", "" },
        { "D", "", "", "{\"cpu\":1e308}" },
        { "D", "", "", "{\"cpu\":\"x\"}" },
        { "D", "", "", "garbage" },
        { "D", "", "", "{\"cpu\":-1}" },
        { "F", "boom", "p", "[1,2]" },
        { "F", "boom", "", "{\"cpu\":1e400}" },
        { "Z", "", "", "" },
    };

    [Theory]
    [MemberData(nameof(RawReports))]
    public async Task Report_ArgumentsTheStoreNeverSends_NoScriptErrorAndBatchPartnersApplied(string kind, string a1, string a2, string a3)
    {
        var run = (await _store.SubmitRunAsync(Run(Shell("a"), Shell("b"), Shell("c")), null)).Run;
        await Connect(slots: 3);
        var claimed = await _store.ClaimAsync(new ClaimRequest("agent-1", 3));
        string Token(string id) => claimed.Single(x => x.StepId == id).FencingToken.ToString(CultureInfo.InvariantCulture);
        // The overflow case needs two finite amounts whose sum is not.
        var partner = kind == "D" ? (Kind: "D", Step: "c", A3: a3) : (Kind: "S", Step: "c", A3: "");
        var args = new List<RedisValue> { _store.KeyPrefix, _time.GetUtcNow().ToUnixTimeMilliseconds(), 4 };
        args.AddRange(["S", run.Id, "b", Token("b"), "", "", "", "", ""]);
        args.AddRange([kind, run.Id, "a", Token("a"), a1, a2, a3, "", ""]);
        args.AddRange([partner.Kind, run.Id, partner.Step, Token(partner.Step), "", "", partner.A3, "", ""]);
        args.AddRange(["D", run.Id, "b", Token("b"), "from-b", "", "{\"cpu\":1}", "", ""]);

        var result = (RedisResult[])(await Db.ScriptEvaluateAsync(Scripts.Source(LuaScripts.Report), [_store.KeyPrefix + "ctr"], [.. args]))!;

        Assert.Equal(4, result.Length);
        Assert.Equal(0, (int)result[3]);
        var after = (await _store.GetRunAsync(run.Id))!;
        Assert.Equal(StepState.Succeeded, after.Steps.Single(s => s.Id == "b").State);
        Assert.All(after.Steps, s => Assert.InRange(s.Progress, 0, 100));
        Assert.All(after.BudgetUsed, u => Assert.True(double.IsFinite(u.Value) && u.Value >= 0, $"{u.Key} = {u.Value}"));
        await AssertSettlesAsync(run.Id);
    }

    private Task<AgentSession> Connect(int slots) =>
        _store.ConnectAgentAsync(new AgentRegistration("agent-1", "h", ["shell"], [], new Dictionary<string, string>(), slots, [], []));

    private async Task AssertSettlesAsync(string runId)
    {
        var run = (await _store.GetRunAsync(runId))!;
        if (run.State is not (RunState.Succeeded or RunState.Failed or RunState.Cancelled))
        {
            await _store.CancelRunAsync(runId, "settle");
        }

        _time.Advance(_options.LeaseDuration + TimeSpan.FromSeconds(1));
        await _store.RunMaintenanceAsync(100);
        var done = (await _store.GetRunAsync(runId))!;
        Assert.True(done.State is RunState.Succeeded or RunState.Failed or RunState.Cancelled, $"run is {done.State}");
        var events = await _store.ReadEventsAsync(runId, 0, 10_000);
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Seq));
        var stats = await _store.GetStatsAsync();
        Assert.All(stats.Slots, s => Assert.True(s.Used == 0, $"{s.Kind} counter '{s.Name}' still holds {s.Used}"));
    }
}
