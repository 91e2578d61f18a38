using System.Diagnostics.Metrics;
using ControlPlane.Scheduler.Internal;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

public sealed class SchedulerMetricsTests
{
    [Fact]
    public void CapQueues_MoreThanAHundredQueues_TheFirstHundredByNameKeepTheirLabelTheRestSumAsOther()
    {
        using var meter = new Meter("test." + Guid.NewGuid().ToString("N"));
        var gauges = new StoreGauges(meter, "replica-1", () => [], TimeProvider.System, NullLogger.Instance);
        var queues = Enumerable.Range(0, 105).Reverse().Select(i => ("default", $"q{i:D3}", (long)i + 1)).ToList();

        var series = gauges.CapQueues(queues);

        var labels = series.Select(s => (string)s.Tags.ToArray().Single(t => t.Key == "queue").Value!).ToList();
        Assert.Equal(StoreGauges.MaxQueueLabels + 1, series.Length);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"q{i:D3}").Append("other"), labels);
        Assert.Equal(101 + 102 + 103 + 104 + 105, series.Single(s => s.Tags.ToArray().Any(t => t.Value is "other")).Value);
        Assert.All(series, s => Assert.Contains(s.Tags.ToArray(), t => t.Key == "scheduler_id" && (string?)t.Value == "replica-1"));
    }

    [Fact]
    public void DispatchLatency_SamplesOlderThanTheWindow_AreLeftOut()
    {
        var time = new ManualTimeProvider();
        using var metrics = new SchedulerMetrics(time);
        var now = time.GetUtcNow();
        metrics.Dispatched("default", [Assigned("q", now - TimeSpan.FromSeconds(100))], now);
        time.Advance(SchedulerMetrics.LatencyWindow + TimeSpan.FromSeconds(1));
        now = time.GetUtcNow();
        metrics.Dispatched("default", [.. Enumerable.Range(1, 20).Select(i => Assigned("q", now - TimeSpan.FromSeconds(i)))], now);

        var (p50, p95) = metrics.DispatchLatency("default", "q")!.Value;

        Assert.Equal(TimeSpan.FromSeconds(10), p50);
        Assert.Equal(TimeSpan.FromSeconds(19), p95);
        Assert.Null(metrics.DispatchLatency("default", "other-queue"));
        time.Advance(SchedulerMetrics.LatencyWindow + TimeSpan.FromSeconds(1));
        Assert.Null(metrics.DispatchLatency("default", "q"));
    }

    private static Assignment Assigned(string queue, DateTimeOffset readyAt) =>
        new() { Spec = new StepSpec { Queue = queue }, ReadyAt = Timestamp.FromDateTimeOffset(readyAt) };
}
