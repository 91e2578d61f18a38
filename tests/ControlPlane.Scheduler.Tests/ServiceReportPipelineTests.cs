using System.Reflection;
using ControlPlane.Scheduler.Services;
using ControlPlane.V1;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

public sealed class ServiceReportPipelineTests
{
    [Fact]
    public async Task Post_ReportsArriveWhileACommitIsInFlight_NextCommitTakesThemAllInOneCall()
    {
        var store = GatedReportStore.Create(out var gated);
        var pipeline = new ReportPipeline(store, batchSize: 256, NullLogger.Instance, TimeProvider.System);
        pipeline.Start();
        var outcomes = new List<ReportOutcome?>();
        var allDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnOutcome(CommitResult result)
        {
            lock (outcomes)
            {
                outcomes.Add(result.Outcome);
                if (outcomes.Count == 11)
                {
                    allDone.TrySetResult();
                }
            }
        }

        // The first report starts a commit that the store holds open; ten more arrive meanwhile.
        Assert.True(await pipeline.PostAsync(Report(0), OnOutcome, CancellationToken.None));
        await gated.FirstCallStarted.Task.WaitAsync(ServiceTestHost.Timeout);
        for (var i = 1; i <= 10; i++)
        {
            Assert.True(await pipeline.PostAsync(Report(i), OnOutcome, CancellationToken.None));
        }

        gated.Release.TrySetResult();
        await allDone.Task.WaitAsync(ServiceTestHost.Timeout);
        await pipeline.CompleteAsync(CancellationToken.None);

        Assert.Equal([1, 10], gated.BatchSizes);
        Assert.Equal(2, pipeline.Commits);
        Assert.All(outcomes, o => Assert.Equal(ReportOutcome.UnknownAttempt, o));
    }

    [Fact]
    public async Task Post_MoreReportsThanTheBatch_SplitIntoBatchSizedCommits()
    {
        var store = GatedReportStore.Create(out var gated);
        var pipeline = new ReportPipeline(store, batchSize: 4, NullLogger.Instance, TimeProvider.System);
        pipeline.Start();
        var count = 0;
        var allDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        await pipeline.PostAsync(Report(0), _ => Interlocked.Increment(ref count), CancellationToken.None);
        await gated.FirstCallStarted.Task.WaitAsync(ServiceTestHost.Timeout);
        for (var i = 1; i <= 9; i++)
        {
            await pipeline.PostAsync(Report(i), _ =>
            {
                if (Interlocked.Increment(ref count) == 10)
                {
                    allDone.TrySetResult();
                }
            }, CancellationToken.None);
        }

        gated.Release.TrySetResult();
        await allDone.Task.WaitAsync(ServiceTestHost.Timeout);

        Assert.Equal([1, 4, 4, 1], gated.BatchSizes);
    }

    [Fact]
    public async Task Commit_StoreUnavailableForManyTries_WaitsAndStoresTheReport()
    {
        var inner = new EmbeddedRunStore();
        var run = (await inner.SubmitRunAsync(Specs.Run(Specs.Shell("a")), null)).Run;
        await inner.ConnectAgentAsync(new AgentRegistration("agent-1", "h", ["shell"], [], new Dictionary<string, string>(), 1, [], []));
        var a = Assert.Single(await inner.ClaimAsync(new ClaimRequest("agent-1", 1)));
        var store = OutageStore.Create(inner, out var outage);
        outage.FailReports = 20;
        var pipeline = new ReportPipeline(store, batchSize: 16, NullLogger.Instance, new ImmediateTimeProvider());
        pipeline.Start();
        var committed = new TaskCompletionSource<CommitResult>(TaskCreationOptions.RunContinuationsAsynchronously);

        var completed = new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = a.FencingToken } };
        await pipeline.PostAsync(new AttemptReport(new AttemptRef(a.RunId, a.StepId, a.FencingToken), completed), r => committed.TrySetResult(r), CancellationToken.None);
        var result = await committed.Task.WaitAsync(ServiceTestHost.Timeout);

        Assert.Equal(new CommitResult(ReportOutcome.Accepted, null), result);
        Assert.Equal(21, outage.ReportCalls);
        Assert.Equal(StepState.Succeeded, (await inner.GetRunAsync(run.Id))!.Steps[0].State);
    }

    [Fact]
    public async Task CompleteAsync_OutOfTimeWhileTheStoreIsUnreachable_GivesUpWithoutRefusing()
    {
        var store = OutageStore.Create(new EmbeddedRunStore(), out var outage);
        outage.FailReports = int.MaxValue;
        var pipeline = new ReportPipeline(store, batchSize: 16, NullLogger.Instance, TimeProvider.System);
        pipeline.Start();
        var committed = new TaskCompletionSource<CommitResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        await pipeline.PostAsync(Report(1), r => committed.TrySetResult(r), CancellationToken.None);
        await outage.Failed.Task.WaitAsync(ServiceTestHost.Timeout);

        using var outOfTime = new CancellationTokenSource();
        await outOfTime.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.CompleteAsync(outOfTime.Token));
        var result = await committed.Task.WaitAsync(ServiceTestHost.Timeout);

        // Neither an outcome nor a refusal: the agent keeps its result and sends it again elsewhere.
        Assert.Equal(new CommitResult(null, null), result);
        Assert.False(await pipeline.PostAsync(Report(2), _ => { }, CancellationToken.None));
    }

    [Fact]
    public async Task PostAsync_PipelineFull_WaitsUntilACommitMakesRoom()
    {
        var store = GatedReportStore.Create(out var gated);
        var pipeline = new ReportPipeline(store, batchSize: 1, NullLogger.Instance, TimeProvider.System, capacity: 2);
        pipeline.Start();

        await pipeline.PostAsync(Report(0), _ => { }, CancellationToken.None);
        await gated.FirstCallStarted.Task.WaitAsync(ServiceTestHost.Timeout);
        var second = pipeline.PostAsync(Report(1), _ => { }, CancellationToken.None);
        var third = pipeline.PostAsync(Report(2), _ => { }, CancellationToken.None);
        var fourth = pipeline.PostAsync(Report(3), _ => { }, CancellationToken.None).AsTask();

        Assert.True(second.IsCompletedSuccessfully);
        Assert.True(third.IsCompletedSuccessfully);
        Assert.False(fourth.IsCompleted);
        gated.Release.TrySetResult();
        Assert.True(await fourth.WaitAsync(ServiceTestHost.Timeout));
    }

    private static AttemptReport Report(int i) =>
        new(new AttemptRef("no-run", "s", i), new ConnectRequest { StepStarted = new StepStarted { FencingToken = i } });

    /// <summary>A clock whose timers fire at once: retry waits take no time, only their count matters.</summary>
    private sealed class ImmediateTimeProvider : TimeProvider
    {
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            base.CreateTimer(callback, state, dueTime == Timeout.InfiniteTimeSpan ? dueTime : TimeSpan.Zero, period);
    }

    /// <summary>A store whose ReportAsync fails as unreachable (RunStoreError.Unavailable) the first <see cref="FailReports"/> times.</summary>
    public class OutageStore : DispatchProxy
    {
        private IRunStore _inner = null!;
        private int _calls;

        public int FailReports { get; set; }

        /// <summary>While set, every RenewLeasesAsync fails as if the store were unreachable.</summary>
        public bool FailRenewals { get; set; }

        /// <summary>Completes when a renewal failed because of <see cref="FailRenewals"/>.</summary>
        public TaskCompletionSource RenewalFailed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int ReportCalls => Volatile.Read(ref _calls);

        /// <summary>How many failed calls complete <see cref="Failed"/>. Default is 1.</summary>
        public int SignalAfterFailures { get; set; } = 1;

        public TaskCompletionSource Failed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public static IRunStore Create(IRunStore inner, out OutageStore outage)
        {
            var proxy = Create<IRunStore, OutageStore>();
            outage = (OutageStore)(object)proxy;
            outage._inner = inner;
            return proxy;
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            if (targetMethod!.Name == nameof(IRunStore.RenewLeasesAsync) && FailRenewals)
            {
                RenewalFailed.TrySetResult();
                return Task.FromException<IReadOnlyList<long>>(
                    new RunStoreException(RunStoreError.Unavailable, ErrorReason.StoreUnavailable, "the run store (Redis) cannot be reached: test outage"));
            }

            if (targetMethod.Name == nameof(IRunStore.ReportAsync) && Interlocked.Increment(ref _calls) is var call && call <= FailReports)
            {
                if (call >= SignalAfterFailures)
                {
                    Failed.TrySetResult();
                }

                return Task.FromException<IReadOnlyList<ReportOutcome>>(
                    new RunStoreException(RunStoreError.Unavailable, ErrorReason.StoreUnavailable, "the run store (Redis) cannot be reached: test outage"));
            }

            return targetMethod.Invoke(_inner, args);
        }
    }

    /// <summary>An embedded store whose first ReportAsync waits for the test, recording every batch size.</summary>
    public class GatedReportStore : DispatchProxy
    {
        private IRunStore _inner = null!;

        public TaskCompletionSource FirstCallStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public List<int> BatchSizes { get; } = [];

        public static IRunStore Create(out GatedReportStore gated)
        {
            var proxy = Create<IRunStore, GatedReportStore>();
            gated = (GatedReportStore)(object)proxy;
            gated._inner = new EmbeddedRunStore();
            return proxy;
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            if (targetMethod!.Name == nameof(IRunStore.ReportAsync))
            {
                return GatedReport((IReadOnlyList<AttemptReport>)args![0]!);
            }

            return targetMethod.Invoke(_inner, args);
        }

        private async Task<IReadOnlyList<ReportOutcome>> GatedReport(IReadOnlyList<AttemptReport> reports)
        {
            lock (BatchSizes)
            {
                BatchSizes.Add(reports.Count);
            }

            FirstCallStarted.TrySetResult();
            await Release.Task;
            return await _inner.ReportAsync(reports);
        }
    }
}
