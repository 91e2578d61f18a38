using ControlPlane.Scheduler.Audit;
using ControlPlane.V1;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

/// <summary>What every <see cref="IAuditStore"/> does alike (embedded and Redis). Each test uses a store of its own.</summary>
public abstract class AuditStoreContractTests
{
    protected abstract Task<IAuditStore> CreateStoreAsync();

    private static AuditRecord Entry(string action, string target, string actor = "ci") =>
        new("ignored", DateTimeOffset.UnixEpoch, actor, "submitter", action, target, AuditOutcome.Succeeded, "detail of " + target);

    [Fact]
    public async Task Append_StampsIdAndTimeByTheStoresClock_RoundTripsTheRest()
    {
        var store = await CreateStoreAsync();
        var before = DateTimeOffset.UtcNow.AddMinutes(-1);

        var stored = await store.AppendAsync(Entry(AuditActions.RunSubmit, "run-1"), CancellationToken.None);
        var page = await store.ListAsync(new AuditQuery(10, null, null), CancellationToken.None);

        Assert.NotEqual("ignored", stored.Id);
        Assert.InRange(stored.Time, before, DateTimeOffset.UtcNow.AddMinutes(1));
        Assert.Equal(stored, Assert.Single(page.Entries));
        Assert.Equal(Entry(AuditActions.RunSubmit, "run-1") with { Id = stored.Id, Time = stored.Time }, stored);
        Assert.Null(page.NextCursor);
    }

    [Fact]
    public async Task List_PagesByCursor_NewestFirstEveryEntryOnce()
    {
        var store = await CreateStoreAsync();
        for (var i = 0; i < 7; i++)
        {
            await store.AppendAsync(Entry(AuditActions.RunCancel, "run-" + i), CancellationToken.None);
        }

        var targets = new List<string>();
        var pages = 0;
        string? cursor = null;
        do
        {
            var page = await store.ListAsync(new AuditQuery(3, cursor, null), CancellationToken.None);
            targets.AddRange(page.Entries.Select(e => e.Target));
            cursor = page.NextCursor;
            pages++;
        }
        while (cursor is not null);

        Assert.Equal(["run-6", "run-5", "run-4", "run-3", "run-2", "run-1", "run-0"], targets);
        Assert.Equal(3, pages);
    }

    [Fact]
    public async Task List_ExactPageAtTheEnd_NoCursor()
    {
        var store = await CreateStoreAsync();
        for (var i = 0; i < 4; i++)
        {
            await store.AppendAsync(Entry(AuditActions.RunCancel, "run-" + i), CancellationToken.None);
        }

        var first = await store.ListAsync(new AuditQuery(2, null, null), CancellationToken.None);
        var second = await store.ListAsync(new AuditQuery(2, first.NextCursor, null), CancellationToken.None);

        Assert.NotNull(first.NextCursor);
        Assert.Equal(["run-1", "run-0"], second.Entries.Select(e => e.Target));
        Assert.Null(second.NextCursor);
    }

    [Fact]
    public async Task List_ByAction_OnlyThatActionAcrossPages()
    {
        var store = await CreateStoreAsync();
        for (var i = 0; i < 10; i++)
        {
            await store.AppendAsync(Entry(i % 3 == 0 ? AuditActions.TokenCreate : AuditActions.RunSubmit, "t-" + i), CancellationToken.None);
        }

        var first = await store.ListAsync(new AuditQuery(2, null, AuditActions.TokenCreate), CancellationToken.None);
        var second = await store.ListAsync(new AuditQuery(2, first.NextCursor, AuditActions.TokenCreate), CancellationToken.None);

        Assert.Equal(["t-9", "t-6"], first.Entries.Select(e => e.Target));
        Assert.Equal(["t-3", "t-0"], second.Entries.Select(e => e.Target));
        Assert.All(first.Entries.Concat(second.Entries), e => Assert.Equal(AuditActions.TokenCreate, e.Action));
    }

    [Theory]
    [InlineData("not-a-cursor")]
    [InlineData("-1")]
    public async Task List_CursorTheStoreDidNotIssue_ArgumentException(string cursor)
    {
        var store = await CreateStoreAsync();

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => store.ListAsync(new AuditQuery(10, cursor, null), CancellationToken.None));

        Assert.Equal("query", ex.ParamName);
    }
}

public sealed class EmbeddedAuditStoreTests : AuditStoreContractTests
{
    protected override Task<IAuditStore> CreateStoreAsync() => Task.FromResult<IAuditStore>(new EmbeddedAuditStore());

    [Fact]
    public async Task Append_PastCapacity_KeepsAboutTheNewestCapacity()
    {
        var store = new EmbeddedAuditStore(capacity: 100);
        for (var i = 0; i < 1000; i++)
        {
            await store.AppendAsync(new AuditRecord("", default, "ci", "admin", AuditActions.RunSubmit, "run-" + i, AuditOutcome.Succeeded, ""), CancellationToken.None);
        }

        var newest = await store.ListAsync(new AuditQuery(1, null, null), CancellationToken.None);

        Assert.InRange(store.Count, 100, 110);
        Assert.Equal("run-999", Assert.Single(newest.Entries).Target);
    }
}
