using ControlPlane.V1;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

// Leases frozen over an interval when the store could not be reached (IRunStore.FreezeLeasesAsync).
public abstract partial class RunStoreContractTests
{
    [Fact]
    public async Task FreezeLeases_OutageMidLease_DeadlineMovesByTheOutage()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        await Connect("agent-1", slots: 1);
        Assert.Single(await Claim("agent-1", 1));

        // The lease runs from 0 s to 30 s; the store is unreachable from 10 s to 20 s.
        Time.Advance(TimeSpan.FromSeconds(10));
        var from = Time.GetUtcNow();
        Time.Advance(TimeSpan.FromSeconds(10));
        var freeze = await Store.FreezeLeasesAsync(from, Time.GetUtcNow());
        Time.Advance(TimeSpan.FromSeconds(19) + TimeSpan.FromMilliseconds(999));
        var beforeShifted = await Store.RunMaintenanceAsync(100);
        Time.Advance(TimeSpan.FromMilliseconds(1));
        var atShifted = await Store.RunMaintenanceAsync(100);

        Assert.Equal(new LeaseFreezeResult(TimeSpan.FromSeconds(10), 1), freeze);
        Assert.Equal(0, beforeShifted.LeasesExpired);
        Assert.Equal(1, atShifted.LeasesExpired);
        Assert.Equal(StepState.Ready, StepOf((await Store.GetRunAsync(run.Id))!, "a").State);
    }

    [Fact]
    public async Task FreezeLeases_TwoReplicasSawOverlappingOutages_ShiftOnceInTotal()
    {
        await Store.SubmitRunAsync(Run(Shell("a")), null);
        await Connect("agent-1", slots: 1);
        Assert.Single(await Claim("agent-1", 1));

        // Replica A last reached the store at 10 s, replica B at 12 s; both freeze up to 22 s, then A once more up to 24 s.
        Time.Advance(TimeSpan.FromSeconds(10));
        var fromA = Time.GetUtcNow();
        Time.Advance(TimeSpan.FromSeconds(2));
        var fromB = Time.GetUtcNow();
        Time.Advance(TimeSpan.FromSeconds(10));
        var to = Time.GetUtcNow();
        var a = await Store.FreezeLeasesAsync(fromA, to);
        var b = await Store.FreezeLeasesAsync(fromB, to);
        Time.Advance(TimeSpan.FromSeconds(2));
        var again = await Store.FreezeLeasesAsync(fromA, Time.GetUtcNow());

        // 30 s + 12 s + 2 s.
        Time.Advance(TimeSpan.FromSeconds(44) - TimeSpan.FromSeconds(24) - TimeSpan.FromMilliseconds(1));
        var before = await Store.RunMaintenanceAsync(100);
        Time.Advance(TimeSpan.FromMilliseconds(1));
        var at = await Store.RunMaintenanceAsync(100);

        Assert.Equal(new LeaseFreezeResult(TimeSpan.FromSeconds(12), 1), a);
        Assert.Equal(new LeaseFreezeResult(TimeSpan.Zero, 0), b);
        Assert.Equal(new LeaseFreezeResult(TimeSpan.FromSeconds(2), 1), again);
        Assert.Equal(0, before.LeasesExpired);
        Assert.Equal(1, at.LeasesExpired);
    }

    [Fact]
    public async Task FreezeLeases_OutageLongerThanALease_ShiftsOneLeaseAtMost()
    {
        await Store.SubmitRunAsync(Run(Shell("a")), null);
        await Connect("agent-1", slots: 1);
        Assert.Single(await Claim("agent-1", 1));

        // Unreachable from 10 s to 55 s: 45 s, more than the 30 s lease.
        Time.Advance(TimeSpan.FromSeconds(10));
        var from = Time.GetUtcNow();
        Time.Advance(TimeSpan.FromSeconds(45));
        var freeze = await Store.FreezeLeasesAsync(from, Time.GetUtcNow());
        var repeated = await Store.FreezeLeasesAsync(from, Time.GetUtcNow());
        Time.Advance(TimeSpan.FromSeconds(5) - TimeSpan.FromMilliseconds(1));
        var before = await Store.RunMaintenanceAsync(100);
        Time.Advance(TimeSpan.FromMilliseconds(1));
        var at = await Store.RunMaintenanceAsync(100);

        Assert.Equal(new LeaseFreezeResult(Options.LeaseDuration, 1), freeze);
        Assert.Equal(new LeaseFreezeResult(TimeSpan.Zero, 0), repeated);
        Assert.Equal(0, before.LeasesExpired);
        Assert.Equal(1, at.LeasesExpired);
    }

    [Fact]
    public async Task FreezeLeases_LeaseExpiredBeforeTheOutage_StaysExpired()
    {
        await Store.SubmitRunAsync(Run(Shell("a"), Shell("b")), null);
        await Connect("agent-1", slots: 1);
        await Connect("agent-2", slots: 1);
        Assert.Single(await Claim("agent-1", 1));
        Time.Advance(TimeSpan.FromSeconds(20));
        var late = Assert.Single(await Claim("agent-2", 1));

        // agent-1's lease ended at 30 s, before the outage from 35 s to 40 s; agent-2's runs to 50 s.
        Time.Advance(TimeSpan.FromSeconds(15));
        var from = Time.GetUtcNow();
        Time.Advance(TimeSpan.FromSeconds(5));
        var freeze = await Store.FreezeLeasesAsync(from, Time.GetUtcNow());
        var reaped = await Store.RunMaintenanceAsync(100);
        Time.Advance(TimeSpan.FromSeconds(15) - TimeSpan.FromMilliseconds(1));
        var before = await Store.RunMaintenanceAsync(100);

        Assert.Equal(new LeaseFreezeResult(TimeSpan.FromSeconds(5), 1), freeze);
        Assert.Equal(1, reaped.LeasesExpired);
        Assert.Equal(0, before.LeasesExpired);
        Assert.Equal(ReportOutcome.Accepted, await Complete(late));
    }

    [Fact]
    public async Task FreezeLeases_UntilInTheFuture_FreezesUpToNow()
    {
        await Store.SubmitRunAsync(Run(Shell("a")), null);
        await Connect("agent-1", slots: 1);
        Assert.Single(await Claim("agent-1", 1));
        Time.Advance(TimeSpan.FromSeconds(10));
        var from = Time.GetUtcNow();
        Time.Advance(TimeSpan.FromSeconds(3));

        var freeze = await Store.FreezeLeasesAsync(from, Time.GetUtcNow() + TimeSpan.FromHours(1));
        Time.Advance(TimeSpan.FromSeconds(2));
        var later = await Store.FreezeLeasesAsync(from, Time.GetUtcNow());

        Assert.Equal(new LeaseFreezeResult(TimeSpan.FromSeconds(3), 1), freeze);
        Assert.Equal(new LeaseFreezeResult(TimeSpan.FromSeconds(2), 1), later);
    }

    [Fact]
    public async Task FreezeLeases_SinceAfterUntil_RefusedNamingTheField()
    {
        Time.Advance(TimeSpan.FromSeconds(10));
        var now = Time.GetUtcNow();

        var ex = await Assert.ThrowsAsync<RunStoreException>(() => Store.FreezeLeasesAsync(now, now - TimeSpan.FromSeconds(1)));
        var early = await Assert.ThrowsAsync<RunStoreException>(() => Store.FreezeLeasesAsync(DateTimeOffset.UnixEpoch - TimeSpan.FromSeconds(1), now));

        Assert.Equal(RunStoreError.InvalidArgument, ex.Error);
        Assert.Equal("until", ex.Field);
        Assert.Equal(RunStoreError.InvalidArgument, early.Error);
        Assert.Equal("since", early.Field);
    }
}
