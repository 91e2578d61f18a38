using ControlPlane.Scheduler.Internal;
using ControlPlane.V1;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

/// <summary>Per-step caps on log lines and progress events in a run's events; transitions and checkpoints are never dropped.</summary>
public abstract partial class RunStoreContractTests
{
    [Fact]
    public async Task Report_LogsBeyondTheStepCap_DroppedCountedAndMarkedOnce()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        await Connect("agent-1", slots: 1);
        var a = Assert.Single(await Claim("agent-1", 1));
        var batch = Enumerable.Range(0, ReportLimits.MaxLogLines).Select(i => "line " + i).ToArray();
        var reports = Enumerable.Range(0, (ReportLimits.MaxLogLinesPerStep / ReportLimits.MaxLogLines) + 2).Select(_ => LogOf(a, batch)).ToList();
        reports.Insert(5, new AttemptReport(Ref(a), new ConnectRequest { StepCheckpoint = new StepCheckpoint { FencingToken = a.FencingToken, Data = Google.Protobuf.ByteString.CopyFromUtf8("ck") } }));

        foreach (var chunk in reports.Chunk(4))
        {
            Assert.All(await Store.ReportAsync(chunk), o => Assert.Equal(ReportOutcome.Accepted, o));
        }

        await Complete(a);

        var done = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(2 * ReportLimits.MaxLogLines, StepOf(done, "a").LogLinesDropped);
        var events = await ReadAllEventsAsync(run.Id);
        var logged = events.Where(e => e.StepLogged is not null).ToList();
        Assert.Equal(ReportLimits.MaxLogLinesPerStep, logged.Sum(e => e.StepLogged.Lines.Count) - 1);
        Assert.Equal(ReportLimits.LogTruncatedLine, Assert.Single(logged, e => e.StepLogged.Lines.Contains(ReportLimits.LogTruncatedLine)).StepLogged.Lines.Single());
        Assert.Single(events, e => e.StepCheckpointed is not null);
        Assert.Equal(StepState.Succeeded, StepOf(done, "a").State);
        Assert.Contains(events, e => e.StepStateChanged is { ToState: StepState.Succeeded });
        Assert.Equal(done.LastEventSeq, events[^1].Seq);
    }

    [Fact]
    public async Task Report_ProgressBeyondTheStepCap_StillUpdatesTheStepButNotTheEvents()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        await Connect("agent-1", slots: 1);
        var a = Assert.Single(await Claim("agent-1", 1));
        var reports = Enumerable.Range(0, ReportLimits.MaxProgressEventsPerStep + 5).Select(i => ProgressOf(a, i % 100, "p" + i)).ToList();

        foreach (var chunk in reports.Chunk(200))
        {
            await Store.ReportAsync(chunk);
        }

        var mid = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(5, StepOf(mid, "a").ProgressEventsDropped);
        Assert.Equal("p" + (ReportLimits.MaxProgressEventsPerStep + 4), StepOf(mid, "a").ProgressMessage);
        var events = await ReadAllEventsAsync(run.Id);
        Assert.Equal(ReportLimits.MaxProgressEventsPerStep, events.Count(e => e.StepProgressed is not null));
        Assert.Single(events, e => e.StepLogged is not null && e.StepLogged.Lines.Single() == ReportLimits.ProgressTruncatedLine);
    }
}
