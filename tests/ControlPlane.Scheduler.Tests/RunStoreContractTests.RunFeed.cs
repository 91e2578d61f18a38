using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

/// <summary>The run change feed (WatchRuns): one entry per run per call, resumable from any cursor it kept.</summary>
public abstract partial class RunStoreContractTests
{
    [Fact]
    public async Task RunFeed_SubmitAndStateChanges_OneEntryPerRunPerCallInOrder()
    {
        var head = await Store.ReadRunChangesAsync(null, 0);
        Assert.False(head.CursorExpired);
        Assert.Empty(head.Changes);

        var a = (await Store.SubmitRunAsync(Run(Shell("x"), Shell("y", "x")), null)).Run;
        var b = (await Store.SubmitRunAsync(Run(Gate("g")), null)).Run;
        await Connect("agent-1", slots: 1);
        var claimed = Assert.Single(await Claim("agent-1", 1));
        await Complete(claimed);

        var page = await Store.ReadRunChangesAsync(head.Cursor, 100);

        Assert.False(page.CursorExpired);
        Assert.Equal(
            [(a.Id, RunState.Pending), (b.Id, RunState.Running), (a.Id, RunState.Running), (a.Id, RunState.Running)],
            page.Changes.Select(c => (c.RunId, c.State)));
        Assert.All(page.Changes, c => Assert.False(c.Deleted));
        var positions = page.Changes.Select(c => long.Parse(c.Cursor, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(Enumerable.Range((int)positions[0], positions.Count).Select(i => (long)i), positions);
        Assert.Equal(page.Changes[^1].Cursor, page.Cursor);
        Assert.Equal(page.Cursor, (await Store.ReadRunChangesAsync(null, 0)).Cursor);

        // Resuming from any entry returns exactly the ones after it; from the newest, none.
        var rest = await Store.ReadRunChangesAsync(page.Changes[1].Cursor, 100);
        Assert.Equal(page.Changes.Skip(2), rest.Changes);
        var none = await Store.ReadRunChangesAsync(page.Cursor, 100);
        Assert.Empty(none.Changes);
        Assert.False(none.CursorExpired);
        Assert.Equal(page.Cursor, none.Cursor);

        // max bounds a read; the page's cursor continues it.
        var one = await Store.ReadRunChangesAsync(head.Cursor, 1);
        Assert.Equal([page.Changes[0]], one.Changes);
        Assert.Equal(page.Changes.Skip(1), (await Store.ReadRunChangesAsync(one.Cursor, 100)).Changes);
    }

    [Fact]
    public async Task RunFeed_LogsAndProgressAlone_AppendNothing()
    {
        await Store.SubmitRunAsync(Run(Shell("x")), null);
        await Connect("agent-1", slots: 1);
        var claimed = Assert.Single(await Claim("agent-1", 1));
        await Store.ReportAsync([new AttemptReport(Ref(claimed), new ConnectRequest { StepStarted = new StepStarted { FencingToken = claimed.FencingToken } })]);
        var head = await Store.ReadRunChangesAsync(null, 0);

        await Store.ReportAsync([
            new AttemptReport(Ref(claimed), new ConnectRequest { StepLog = new StepLog { FencingToken = claimed.FencingToken, Stream = LogStream.Stdout, Lines = { "hello" } } }),
            new AttemptReport(Ref(claimed), new ConnectRequest { StepProgress = new StepProgress { FencingToken = claimed.FencingToken, Percent = 50 } }),
        ]);

        Assert.Empty((await Store.ReadRunChangesAsync(head.Cursor, 100)).Changes);
    }

    [Fact]
    public async Task RunFeed_RunDeletedByRetention_DeletedEntryWithItsLastState()
    {
        var run = (await Store.SubmitRunAsync(Run(Gate("g")).With(s => s.Retention = Duration.FromTimeSpan(TimeSpan.FromMinutes(1))), null)).Run;
        await Store.CancelRunAsync(run.Id, "gone");
        var head = await Store.ReadRunChangesAsync(null, 0);

        Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(1, (await Store.RunMaintenanceAsync(100)).RunsDeleted);

        var change = Assert.Single((await Store.ReadRunChangesAsync(head.Cursor, 100)).Changes);
        Assert.Equal((run.Id, RunState.Cancelled, true), (change.RunId, change.State, change.Deleted));
    }

    [Fact]
    public async Task RunFeed_CursorOlderThanKept_Expired_RecentOnesStillRead()
    {
        var options = new RunStoreOptions { LeaseDuration = Options.LeaseDuration, RunFeedLength = 5 };
        await using var store = await CreateStoreAsync(options, Time);
        var first = await store.ReadRunChangesAsync(null, 0);

        // Well past the kept length (Redis trims whole stream nodes of about 100 entries, so it may keep more).
        for (var i = 0; i < 300; i++)
        {
            await store.SubmitRunAsync(Run(Gate("g")), null);
        }

        var head = await store.ReadRunChangesAsync(null, 0);
        var old = await store.ReadRunChangesAsync(first.Cursor, 100);
        Assert.True(old.CursorExpired);
        Assert.Empty(old.Changes);
        Assert.Equal(head.Cursor, old.Cursor);

        var newest = long.Parse(head.Cursor, System.Globalization.CultureInfo.InvariantCulture);
        var recent = await store.ReadRunChangesAsync((newest - 5).ToString(System.Globalization.CultureInfo.InvariantCulture), 100);
        Assert.False(recent.CursorExpired);
        Assert.Equal(5, recent.Changes.Count);
    }

    [Fact]
    public async Task RunFeed_CursorAheadOfTheFeed_Expired_MalformedOneInvalid()
    {
        await Store.SubmitRunAsync(Run(Gate("g")), null);

        var ahead = await Store.ReadRunChangesAsync("1000", 100);
        Assert.True(ahead.CursorExpired);
        Assert.Equal("1", ahead.Cursor);

        foreach (var bad in new[] { "", "x1", "-1", "1.5", "99999999999999999999" })
        {
            var ex = await Assert.ThrowsAsync<RunStoreException>(() => Store.ReadRunChangesAsync(bad, 100));
            Assert.Equal(RunStoreError.InvalidArgument, ex.Error);
            Assert.Equal("after_cursor", ex.Field);
        }
    }

    [Fact]
    public async Task GetRunSummaries_AsListRunsGivesThem_NullForMissing()
    {
        var a = (await Store.SubmitRunAsync(Run(Shell("x")).With(s => s.Labels["team"] = "data"), null)).Run;
        var b = (await Store.SubmitRunAsync(Run(Gate("g")), null)).Run;
        var listed = (await Store.ListRunsAsync(new RunQuery())).Runs.ToDictionary(r => r.Id);

        var summaries = await Store.GetRunSummariesAsync([b.Id, "nobody", a.Id]);

        Assert.Equal([listed[b.Id], null, listed[a.Id]], summaries);
        Assert.Empty((await Store.GetRunSummariesAsync([])));
    }
}
