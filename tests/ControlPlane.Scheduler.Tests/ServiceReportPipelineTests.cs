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
        void OnOutcome(ReportOutcome? outcome)
        {
            lock (outcomes)
            {
                outcomes.Add(outcome);
                if (outcomes.Count == 11)
                {
                    allDone.TrySetResult();
                }
            }
        }

        // The first report starts a commit that the store holds open; ten more arrive meanwhile.
        Assert.True(pipeline.Post(Report(0), OnOutcome));
        await gated.FirstCallStarted.Task.WaitAsync(ServiceTestHost.Timeout);
        for (var i = 1; i <= 10; i++)
        {
            Assert.True(pipeline.Post(Report(i), OnOutcome));
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

        pipeline.Post(Report(0), _ => Interlocked.Increment(ref count));
        await gated.FirstCallStarted.Task.WaitAsync(ServiceTestHost.Timeout);
        for (var i = 1; i <= 9; i++)
        {
            pipeline.Post(Report(i), _ =>
            {
                if (Interlocked.Increment(ref count) == 10)
                {
                    allDone.TrySetResult();
                }
            });
        }

        gated.Release.TrySetResult();
        await allDone.Task.WaitAsync(ServiceTestHost.Timeout);

        Assert.Equal([1, 4, 4, 1], gated.BatchSizes);
    }

    private static AttemptReport Report(int i) =>
        new(new AttemptRef("no-run", "s", i), new ConnectRequest { StepStarted = new StepStarted { FencingToken = i } });

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
