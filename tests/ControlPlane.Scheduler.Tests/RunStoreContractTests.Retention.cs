using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

/// <summary>Retention: a finished run is deleted by maintenance once its retention has passed since it finished.</summary>
public abstract partial class RunStoreContractTests
{
    [Fact]
    public async Task Maintenance_FinishedRunPastItsRetention_DeletedWithIndexesAndKey()
    {
        var spec = Run(Shell("a")).With(s =>
        {
            s.Labels["team"] = "vision";
            s.Retention = Duration.FromTimeSpan(TimeSpan.FromHours(1));
        });
        var run = (await Store.SubmitRunAsync(spec, "retained-key")).Run;
        await Store.CancelRunAsync(run.Id, "done with it");

        Time.Advance(TimeSpan.FromMinutes(59));
        var early = await Store.RunMaintenanceAsync(100);
        Assert.Equal(0, early.RunsDeleted);
        Assert.NotNull(await Store.GetRunAsync(run.Id));

        Time.Advance(TimeSpan.FromMinutes(1));
        var due = await Store.RunMaintenanceAsync(100);

        Assert.Equal(1, due.RunsDeleted);
        Assert.Null(await Store.GetRunAsync(run.Id));
        Assert.Empty((await Store.ListRunsAsync(new RunQuery())).Runs);
        Assert.Empty((await Store.ListRunsAsync(new RunQuery(RunState.Unspecified, new Dictionary<string, string> { ["team"] = "vision" }, 10, null))).Runs);
        var events = await Assert.ThrowsAsync<RunStoreException>(() => Store.ReadEventsAsync(run.Id, 0, 100));
        Assert.Equal(RunStoreError.NotFound, events.Error);
        var again = await Store.SubmitRunAsync(spec, "retained-key");
        Assert.True(again.Created);
        Assert.NotEqual(run.Id, again.Run.Id);
        Assert.Equal(0, (await Store.RunMaintenanceAsync(100)).RunsDeleted);
    }

    [Fact]
    public async Task Maintenance_RetentionUnset_DeletedAfterTheStoreDefault()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        await Connect("agent-1", slots: 1);
        await Complete(Assert.Single(await Claim("agent-1", 1)));

        Time.Advance(Options.DefaultRetention - TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, (await Store.RunMaintenanceAsync(100)).RunsDeleted);
        Time.Advance(TimeSpan.FromMilliseconds(1));

        Assert.Equal(1, (await Store.RunMaintenanceAsync(100)).RunsDeleted);
        Assert.Null(await Store.GetRunAsync(run.Id));
    }

    [Fact]
    public async Task Maintenance_RetentionZero_KeptForever()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")).With(s => s.Retention = new Duration()), null)).Run;
        await Store.CancelRunAsync(run.Id, "");

        Time.Advance(TimeSpan.FromDays(3650));

        Assert.Equal(0, (await Store.RunMaintenanceAsync(100)).RunsDeleted);
        Assert.Equal(RunState.Cancelled, (await Store.GetRunAsync(run.Id))!.State);
    }

    [Fact]
    public async Task Maintenance_RunRetriedAfterFinishing_NotDeletedWhileItRuns()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")).With(s => s.Retention = Duration.FromTimeSpan(TimeSpan.FromHours(1))), null)).Run;
        await Connect("agent-1", slots: 1);
        await Fail(Assert.Single(await Claim("agent-1", 1)), "broken", permanent: true);
        await Store.RetryRunAsync(run.Id);

        Time.Advance(TimeSpan.FromHours(2));
        Assert.Equal(0, (await Store.RunMaintenanceAsync(100)).RunsDeleted);
        await Complete(Assert.Single(await Claim("agent-1", 1)));
        Time.Advance(TimeSpan.FromHours(1) - TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, (await Store.RunMaintenanceAsync(100)).RunsDeleted);
        Time.Advance(TimeSpan.FromMilliseconds(1));

        Assert.Equal(1, (await Store.RunMaintenanceAsync(100)).RunsDeleted);
        Assert.Null(await Store.GetRunAsync(run.Id));
    }

    [Fact]
    public async Task Maintenance_ManyExpiredRuns_DeletesAtMostMaxPerPassOldestFirst()
    {
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var run = (await Store.SubmitRunAsync(Run(Shell("a")).With(s => s.Retention = Duration.FromTimeSpan(TimeSpan.FromMinutes(1))), null)).Run;
            await Store.CancelRunAsync(run.Id, "");
            ids.Add(run.Id);
            Time.Advance(TimeSpan.FromSeconds(1));
        }

        Time.Advance(TimeSpan.FromMinutes(1));

        Assert.Equal(2, (await Store.RunMaintenanceAsync(2)).RunsDeleted);
        Assert.Null(await Store.GetRunAsync(ids[0]));
        Assert.Null(await Store.GetRunAsync(ids[1]));
        Assert.NotNull(await Store.GetRunAsync(ids[2]));
        Assert.Equal(2, (await Store.RunMaintenanceAsync(2)).RunsDeleted);
        Assert.Equal(1, (await Store.RunMaintenanceAsync(2)).RunsDeleted);
        Assert.Empty((await Store.ListRunsAsync(new RunQuery())).Runs);
    }
}
