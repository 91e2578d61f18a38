using ControlPlane.Scheduler.Redis.Internal;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using StackExchange.Redis;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>
/// The stored data's format version: stamped on an empty namespace, found on data written before the version key,
/// refused when unknown, migrated only when asked, and enforced by every state-changing script.
/// </summary>
public sealed class StoreFormatTests : IAsyncLifetime
{
    private readonly RedisServer _redis = new();
    private ConnectionMultiplexer _connection = null!;
    private IDatabase _db = null!;

    public async Task InitializeAsync()
    {
        await _redis.StartAsync();
        _connection = await ConnectionMultiplexer.ConnectAsync(RedisRunStore.CreateConfiguration(_redis.Configuration));
        _db = _connection.GetDatabase();
    }

    public async Task DisposeAsync()
    {
        _connection.Dispose();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task Connect_EmptyNamespace_StampsTheCurrentFormat()
    {
        await using var store = await ConnectAsync("fresh");

        Assert.Equal(StoreFormat.Current.ToString(), (string?)await _db.StringGetAsync("cp:{fresh}:format"));
    }

    [Fact]
    public async Task Connect_DataWrittenBeforeTheVersionKey_IsFormatOneAndNeedsTheMigration()
    {
        await using (var store = await ConnectAsync("old"))
        {
            await store.SubmitRunAsync(Run(Shell("a"), Shell("b", "a")), null);
        }

        // What a release before the version key left behind: no format, no label index.
        await _db.KeyDeleteAsync("cp:{old}:format");

        var ex = await Assert.ThrowsAsync<StoreFormatException>(() => ConnectAsync("old"));
        Assert.Contains("format 1", ex.Message, StringComparison.Ordinal);
        Assert.Equal("1", (string?)await _db.StringGetAsync("cp:{old}:format"));
    }

    [Fact]
    public async Task Migrate_FromFormatOneWithRunsInFlight_IndexesLabelsAndTheRunsFinish()
    {
        string running, waiting;
        Assignment claimed;
        await using (var old = await ConnectAsync("inflight"))
        {
            running = (await old.SubmitRunAsync(Run(Shell("a"), Shell("b", "a")).With(r => r.Labels["team"] = "vision"), null)).Run.Id;
            waiting = (await old.SubmitRunAsync(Run(Shell("c")).With(r => r.Labels["team"] = "vision"), null)).Run.Id;
            await old.SubmitRunAsync(Run(Shell("d")).With(r => r.Labels["team"] = "audio"), null);
            await old.ConnectAgentAsync(new AgentRegistration("agent-1", "h", ["shell"], [], new Dictionary<string, string>(), 1, [], []));
            claimed = Assert.Single(await old.ClaimAsync(new ClaimRequest("agent-1", 1)));
        }

        // Format 1 is this layout without the label index.
        foreach (var key in _connection.GetServers()[0].Keys(pattern: "cp:{inflight}:lbl:*"))
        {
            await _db.KeyDeleteAsync(key);
        }

        await _db.StringSetAsync("cp:{inflight}:format", "1");
        await Assert.ThrowsAsync<StoreFormatException>(() => ConnectAsync("inflight"));

        await using var store = await RedisRunStore.ConnectAsync(_redis.Configuration, "inflight", new RunStoreOptions { MigrateFormat = true }, new ManualTimeProvider());

        Assert.Equal(StoreFormat.Current.ToString(), (string?)await _db.StringGetAsync("cp:{inflight}:format"));
        var vision = await store.ListRunsAsync(new RunQuery(RunState.Unspecified, new Dictionary<string, string> { ["team"] = "vision" }, 10, null));
        Assert.Equal([waiting, running], vision.Runs.Select(r => r.Id));

        // The runs in flight go on: the attempt claimed before the migration reports, and everything finishes.
        await store.ConnectAgentAsync(new AgentRegistration("agent-1", "h", ["shell"], [], new Dictionary<string, string>(), 3, [], [new AttemptRef(claimed.RunId, claimed.StepId, claimed.FencingToken)]));
        Assert.Equal(ReportOutcome.Accepted, Assert.Single(await store.ReportAsync([Completed(claimed.RunId, claimed.StepId, claimed.FencingToken)])));
        for (var round = 0; round < 5; round++)
        {
            foreach (var a in await store.ClaimAsync(new ClaimRequest("agent-1", 3)))
            {
                await store.ReportAsync([Completed(a.RunId, a.StepId, a.FencingToken)]);
            }
        }

        Assert.Equal(RunState.Succeeded, (await store.GetRunAsync(running))!.State);
        Assert.Equal(RunState.Succeeded, (await store.GetRunAsync(waiting))!.State);
    }

    [Fact]
    public async Task Migrate_FromFormatTwoWithRunsInFlight_SchedulesFinishedRunsForDeletionAndTheRunsFinish()
    {
        var time = new ManualTimeProvider();
        string hourly, defaulted, inFlight;
        Assignment claimed;
        Run inFlightBefore;
        await using (var old = await RedisRunStore.ConnectAsync(_redis.Configuration, "ret", new RunStoreOptions(), time))
        {
            hourly = (await old.SubmitRunAsync(Run(Shell("a")).With(r => r.Retention = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromHours(1))), null)).Run.Id;
            defaulted = (await old.SubmitRunAsync(Run(Shell("a")).With(r => r.Labels["team"] = "vision"), "key-1")).Run.Id;
            inFlight = (await old.SubmitRunAsync(Run(Shell("a"), Shell("b", "a")), null)).Run.Id;
            await old.CancelRunAsync(hourly, "");
            await old.CancelRunAsync(defaulted, "");
            await old.ConnectAgentAsync(new AgentRegistration("agent-1", "h", ["shell"], [], new Dictionary<string, string>(), 1, [], []));
            claimed = Assert.Single(await old.ClaimAsync(new ClaimRequest("agent-1", 1)));
            inFlightBefore = (await old.GetRunAsync(inFlight))!;
        }

        // Format 2 is this layout without retention (no per-run retention field, no deletion schedule) and without
        // history lists (GetRun read the transitions from the event stream).
        foreach (var run in new[] { hourly, defaulted, inFlight })
        {
            await _db.HashDeleteAsync("cp:{ret}:r:" + run, "_ret");
            await _db.KeyDeleteAsync("cp:{ret}:h:" + run);
        }

        await _db.KeyDeleteAsync("cp:{ret}:expire");
        await _db.StringSetAsync("cp:{ret}:format", "2");
        await Assert.ThrowsAsync<StoreFormatException>(() => RedisRunStore.ConnectAsync(_redis.Configuration, "ret", new RunStoreOptions(), time));

        await using var store = await RedisRunStore.ConnectAsync(_redis.Configuration, "ret", new RunStoreOptions { MigrateFormat = true }, time);

        Assert.Equal(StoreFormat.Current.ToString(), (string?)await _db.StringGetAsync("cp:{ret}:format"));
        var finishedAt = time.GetUtcNow().ToUnixTimeMilliseconds();
        Assert.Equal(finishedAt + TimeSpan.FromHours(1).TotalMilliseconds, await _db.SortedSetScoreAsync("cp:{ret}:expire", hourly));
        Assert.Equal(finishedAt + TimeSpan.FromDays(7).TotalMilliseconds, await _db.SortedSetScoreAsync("cp:{ret}:expire", defaulted));
        Assert.Null(await _db.SortedSetScoreAsync("cp:{ret}:expire", inFlight));
        var inFlightAfter = (await store.GetRunAsync(inFlight))!;
        Assert.Equal(inFlightBefore.History, inFlightAfter.History);
        Assert.Equal(inFlightBefore.Steps.Select(x => x.History), inFlightAfter.Steps.Select(x => x.History));
        Assert.NotEmpty(inFlightAfter.Steps[0].History);

        // The run in flight goes on: the attempt claimed before the migration reports, and the run finishes.
        await store.ConnectAgentAsync(new AgentRegistration("agent-1", "h", ["shell"], [], new Dictionary<string, string>(), 3, [], [new AttemptRef(claimed.RunId, claimed.StepId, claimed.FencingToken)]));
        Assert.Equal(ReportOutcome.Accepted, Assert.Single(await store.ReportAsync([Completed(claimed.RunId, claimed.StepId, claimed.FencingToken)])));
        var b = Assert.Single(await store.ClaimAsync(new ClaimRequest("agent-1", 3)));
        await store.ReportAsync([Completed(b.RunId, b.StepId, b.FencingToken)]);
        Assert.Equal(RunState.Succeeded, (await store.GetRunAsync(inFlight))!.State);

        time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(1, (await store.RunMaintenanceAsync(100)).RunsDeleted);
        Assert.Null(await store.GetRunAsync(hourly));
        time.Advance(TimeSpan.FromDays(7));
        Assert.Equal(2, (await store.RunMaintenanceAsync(100)).RunsDeleted);
        Assert.Empty((await store.ListRunsAsync(new RunQuery())).Runs);
        Assert.False(await _db.HashExistsAsync("cp:{ret}:idem", "key-1"));
        Assert.Empty(_connection.GetServers()[0].Keys(pattern: "cp:{ret}:lbl:*"));
        foreach (var run in new[] { hourly, defaulted, inFlight })
        {
            Assert.Empty(_connection.GetServers()[0].Keys(pattern: "cp:{ret}:*" + run + "*"));
            Assert.False(await _db.SetContainsAsync("cp:{ret}:live", run));
        }

        Assert.Equal(0, await _db.SortedSetLengthAsync("cp:{ret}:expire"));
    }

    [Fact]
    public async Task Migrate_FromFormatThreeWithRunsInFlight_OldRunsHaveNoTraceAndNewRunsKeepTheirs()
    {
        string inFlight;
        Assignment claimed;
        await using (var old = await ConnectAsync("tp"))
        {
            inFlight = (await old.SubmitRunAsync(Run(Shell("a"), Shell("b", "a")), null)).Run.Id;
            await old.ConnectAgentAsync(new AgentRegistration("agent-1", "h", ["shell"], [], new Dictionary<string, string>(), 1, [], []));
            claimed = Assert.Single(await old.ClaimAsync(new ClaimRequest("agent-1", 1)));
        }

        // Format 3 is this layout: no run carries a trace context (_tp).
        Assert.False(await _db.HashExistsAsync("cp:{tp}:r:" + inFlight, "_tp"));
        await _db.StringSetAsync("cp:{tp}:format", "3");
        var refused = await Assert.ThrowsAsync<StoreFormatException>(() => ConnectAsync("tp"));
        Assert.Contains("3→4", refused.Message, StringComparison.Ordinal);

        await using var store = await RedisRunStore.ConnectAsync(_redis.Configuration, "tp", new RunStoreOptions { MigrateFormat = true }, new ManualTimeProvider());

        Assert.Equal("4", (string?)await _db.StringGetAsync("cp:{tp}:format"));
        Assert.Equal(string.Empty, (await store.GetRunAsync(inFlight))!.TraceId);
        Assert.Equal(string.Empty, Assert.Single((await store.ListRunsAsync(new RunQuery())).Runs).TraceId);

        // The old run goes on without a trace; a run submitted now keeps its context.
        await store.ConnectAgentAsync(new AgentRegistration("agent-1", "h", ["shell"], [], new Dictionary<string, string>(), 1, [], [new AttemptRef(claimed.RunId, claimed.StepId, claimed.FencingToken)]));
        Assert.Equal(ReportOutcome.Accepted, Assert.Single(await store.ReportAsync([Completed(claimed.RunId, claimed.StepId, claimed.FencingToken)])));
        var b = Assert.Single(await store.ClaimAsync(new ClaimRequest("agent-1", 1)));
        Assert.Equal(string.Empty, b.Traceparent);
        await store.ReportAsync([Completed(b.RunId, b.StepId, b.FencingToken)]);
        Assert.Equal(RunState.Succeeded, (await store.GetRunAsync(inFlight))!.State);

        const string traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        var traced = (await store.SubmitRunAsync(Run(Shell("c")), null, traceParent)).Run;
        Assert.Equal("4bf92f3577b34da6a3ce929d0e0e4736", (await store.GetRunAsync(traced.Id))!.TraceId);
        Assert.Equal(traceParent, Assert.Single(await store.ClaimAsync(new ClaimRequest("agent-1", 1))).Traceparent);
    }

    private static AttemptReport Completed(string runId, string stepId, long token) =>
        new(new AttemptRef(runId, stepId, token), new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = token } });

    [Fact]
    public async Task Connect_NewerFormat_RefusesAndSaysWhichItFoundAndWhichItNeeds()
    {
        await _db.StringSetAsync("cp:{newer}:format", "7");

        var ex = await Assert.ThrowsAsync<StoreFormatException>(() => ConnectAsync("newer"));

        Assert.Contains("format 7", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"format {StoreFormat.Current}", ex.Message, StringComparison.Ordinal);
        Assert.Equal("7", (string?)await _db.StringGetAsync("cp:{newer}:format"));
    }

    [Fact]
    public async Task Connect_NotAVersion_RefusesWithoutTouchingTheKey()
    {
        await _db.StringSetAsync("cp:{junk}:format", "hello");

        var ex = await Assert.ThrowsAsync<StoreFormatException>(() => ConnectAsync("junk"));

        Assert.Contains("not a format version", ex.Message, StringComparison.Ordinal);
        Assert.Equal("hello", (string?)await _db.StringGetAsync("cp:{junk}:format"));
    }

    [Fact]
    public async Task Scripts_AfterAnotherReplicaMigrated_RefuseEveryChangeAndWriteNothing()
    {
        await using var store = await ConnectAsync("moved");
        var run = (await store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        var keysBefore = await KeyCountAsync();

        await _db.StringSetAsync("cp:{moved}:format", (StoreFormat.Current + 1).ToString());

        var submit = await Assert.ThrowsAsync<RunStoreException>(() => store.SubmitRunAsync(Run(Shell("x")), null));
        var cancel = await Assert.ThrowsAsync<RunStoreException>(() => store.CancelRunAsync(run.Id, "test"));
        Assert.All([submit, cancel], ex =>
        {
            Assert.Equal(RunStoreError.FailedPrecondition, ex.Error);
            Assert.Equal(ErrorReason.StoreFormatMismatch, ex.Reason);
            Assert.Contains($"format {StoreFormat.Current + 1}", ex.Message, StringComparison.Ordinal);
        });
        Assert.Equal(keysBefore, await KeyCountAsync());
        Assert.Equal(RunState.Pending, (await store.GetRunAsync(run.Id))!.State);
    }

    [Fact]
    public async Task Ensure_OlderFormatWithoutMigrate_RefusesAndNamesTheMigrations()
    {
        await _db.StringSetAsync("cp:{t}:format", "1");
        var ran = new List<int>();

        var ex = await Assert.ThrowsAsync<StoreFormatException>(
            () => StoreFormat.EnsureAsync(_db, "cp:{t}:", migrate: false, TwoMigrations(ran), current: 3));

        Assert.Contains("format 1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("needs format 3", ex.Message, StringComparison.Ordinal);
        Assert.Contains("--migrate", ex.Message, StringComparison.Ordinal);
        Assert.Contains("1→2: first", ex.Message, StringComparison.Ordinal);
        Assert.Empty(ran);
        Assert.Equal("1", (string?)await _db.StringGetAsync("cp:{t}:format"));
    }

    [Fact]
    public async Task Ensure_OlderFormatWithMigrate_RunsEachMigrationInOrderAndStampsEachStep()
    {
        await _db.StringSetAsync("cp:{t}:format", "1");
        var ran = new List<int>();

        var outcome = await StoreFormat.EnsureAsync(_db, "cp:{t}:", migrate: true, TwoMigrations(ran), current: 3);

        Assert.Equal([1, 2], ran);
        Assert.Equal(1, outcome.Found);
        Assert.Equal("3", (string?)await _db.StringGetAsync("cp:{t}:format"));
    }

    [Fact]
    public async Task Ensure_MigrationFailsHalfWay_KeepsTheLastCompletedVersionSoARestartResumes()
    {
        await _db.StringSetAsync("cp:{t}:format", "1");
        var ran = new List<int>();
        var failing = new[]
        {
            new StoreFormat.Migration(1, "first", (_, _) => { ran.Add(1); return Task.CompletedTask; }),
            new StoreFormat.Migration(2, "second", (_, _) => throw new InvalidOperationException("boom")),
        };

        await Assert.ThrowsAsync<InvalidOperationException>(() => StoreFormat.EnsureAsync(_db, "cp:{t}:", migrate: true, failing, current: 3));
        Assert.Equal("2", (string?)await _db.StringGetAsync("cp:{t}:format"));

        await StoreFormat.EnsureAsync(_db, "cp:{t}:", migrate: true, TwoMigrations(ran), current: 3);
        Assert.Equal([1, 2], ran);
        Assert.Equal("3", (string?)await _db.StringGetAsync("cp:{t}:format"));
    }

    private static StoreFormat.Migration[] TwoMigrations(List<int> ran) =>
    [
        new(2, "second", (_, _) => { ran.Add(2); return Task.CompletedTask; }),
        new(1, "first", (_, _) => { ran.Add(1); return Task.CompletedTask; }),
    ];

    private Task<RedisRunStore> ConnectAsync(string ns) =>
        RedisRunStore.ConnectAsync(_redis.Configuration, ns, new RunStoreOptions(), new ManualTimeProvider());

    private async Task<long> KeyCountAsync() => (long)await _db.ExecuteAsync("DBSIZE");
}
