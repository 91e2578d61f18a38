using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ControlPlane.V1;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// The replica's instruments (meter <see cref="MeterName"/>). Counters and histograms count what this replica did, so
/// a dashboard sums them over replicas; the gauges of store-wide state (<see cref="StoreGauges"/>) carry the
/// replica's scheduler_id, and a dashboard takes max() over replicas, never sum().
/// </summary>
internal sealed class SchedulerMetrics : IDisposable
{
    public const string MeterName = "ControlPlane.Scheduler";

    /// <summary>How far back GetStats' dispatch-latency percentiles look.</summary>
    public static readonly TimeSpan LatencyWindow = TimeSpan.FromMinutes(5);

    /// <summary>Samples kept per queue for GetStats' percentiles; a busier queue keeps its newest ones.</summary>
    internal const int MaxSamplesPerQueue = 4096;

    /// <summary>Queues per namespace whose latency GetStats reports; a namespace with more reports the first seen.</summary>
    internal const int MaxTrackedQueues = 1000;

    /// <summary>Attempts whose start this replica remembers for controlplane_step_duration_seconds.</summary>
    internal const int MaxStartedAttempts = 100_000;

    private static readonly double[] LatencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
    private static readonly double[] DurationBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600];
    private static readonly double[] StoreBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly Meter _meter;
    private readonly Counter<long> _dispatched;
    private readonly Counter<long> _finished;
    private readonly Histogram<double> _dispatchLatency;
    private readonly Histogram<double> _stepDuration;
    private readonly Counter<long> _leaseExpirations;
    private readonly Counter<long> _reportsRejected;
    private readonly Histogram<double> _storeCalls;
    private readonly ConcurrentDictionary<(string Namespace, string Queue), LatencyWindowSamples> _latencies = new();
    private readonly ConcurrentDictionary<long, DateTimeOffset> _started = new();

    public SchedulerMetrics(TimeProvider time)
    {
        Time = time;
        _meter = new Meter(MeterName);
        _dispatched = _meter.CreateCounter<long>("controlplane_steps_dispatched", null, "Step attempts this replica assigned to agents.");
        _finished = _meter.CreateCounter<long>("controlplane_steps_finished", null,
            "Step attempts that ended with a result an agent reported to this replica, by outcome (succeeded, failed, timed_out, cancelled).");
        _dispatchLatency = _meter.CreateHistogram("controlplane_dispatch_latency", "s", "READY to assigned, for the steps this replica dispatched.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        _stepDuration = _meter.CreateHistogram("controlplane_step_duration", "s",
            "Started to result of the step attempts whose start and result both reached this replica.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _leaseExpirations = _meter.CreateCounter<long>("controlplane_lease_expirations", null,
            "Attempts this replica's reaper took back because their agent stopped renewing the lease.");
        _reportsRejected = _meter.CreateCounter<long>("controlplane_reports_rejected", null,
            "Agent reports the store refused, by reason (stale_token, unknown_attempt, not_owner, store_error).");
        _storeCalls = _meter.CreateHistogram("controlplane_store_call_duration", "s", "Run store calls of this replica, by operation.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = StoreBuckets });
    }

    /// <summary>The meter, for the store-wide gauges.</summary>
    public Meter Meter => _meter;

    public TimeProvider Time { get; }

    /// <summary>Counts what one claim took and how long each step waited READY (store clock <paramref name="now"/>).</summary>
    public void Dispatched(string ns, IReadOnlyList<Assignment> claimed, DateTimeOffset now)
    {
        if (claimed.Count == 0)
        {
            return;
        }

        _dispatched.Add(claimed.Count);
        var local = Time.GetUtcNow();
        foreach (var assignment in claimed)
        {
            if (assignment.ReadyAt is null)
            {
                continue;
            }

            var waited = Math.Max(0, (now - assignment.ReadyAt.ToDateTimeOffset()).TotalSeconds);
            _dispatchLatency.Record(waited);
            var queue = assignment.Spec?.Queue is { Length: > 0 } q ? q : StepDefaults.Queue;
            if (_latencies.TryGetValue((ns, queue), out var samples) || TryTrack(ns, queue, out samples))
            {
                samples.Add(local, waited);
            }
        }
    }

    /// <summary>Counts finished attempts, their durations and refused reports, from a report batch and its outcomes.</summary>
    public void Reported(IReadOnlyList<AttemptReport> reports, IReadOnlyList<ReportOutcome> outcomes, DateTimeOffset now)
    {
        for (var i = 0; i < reports.Count && i < outcomes.Count; i++)
        {
            var report = reports[i].Report;
            var token = reports[i].Attempt.FencingToken;
            switch (outcomes[i])
            {
                case ReportOutcome.Accepted:
                    Accepted(report, token, now);
                    break;
                case ReportOutcome.StaleToken:
                    _reportsRejected.Add(1, new KeyValuePair<string, object?>("reason", "stale_token"));
                    break;
                case ReportOutcome.UnknownAttempt:
                    _reportsRejected.Add(1, new KeyValuePair<string, object?>("reason", "unknown_attempt"));
                    break;
                case ReportOutcome.NotOwner:
                    _reportsRejected.Add(1, new KeyValuePair<string, object?>("reason", "not_owner"));
                    break;
                default:
                    break;
            }
        }
    }

    /// <summary>Reports the store refused as a whole (not an outage): each counts as rejected for store_error.</summary>
    public void ReportsFailed(int count) => _reportsRejected.Add(count, new KeyValuePair<string, object?>("reason", "store_error"));

    public void LeasesExpired(int count)
    {
        if (count > 0)
        {
            _leaseExpirations.Add(count);
        }
    }

    public void StoreCall(string operation, TimeSpan elapsed) =>
        _storeCalls.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("operation", operation));

    /// <summary>
    /// The median and 95th percentile of the dispatch latencies of <paramref name="queue"/> over the last
    /// <see cref="LatencyWindow"/>; null when this replica dispatched none of its steps then.
    /// </summary>
    public (TimeSpan P50, TimeSpan P95)? DispatchLatency(string ns, string queue)
    {
        if (!_latencies.TryGetValue((ns, queue), out var samples))
        {
            return null;
        }

        var values = samples.Since(Time.GetUtcNow() - LatencyWindow);
        if (values.Length == 0)
        {
            return null;
        }

        Array.Sort(values);
        return (TimeSpan.FromSeconds(Percentile(values, 0.50)), TimeSpan.FromSeconds(Percentile(values, 0.95)));
    }

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    internal static double Percentile(double[] sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    public void Dispose() => _meter.Dispose();

    private void Accepted(ConnectRequest report, long token, DateTimeOffset now)
    {
        switch (report.MessageCase)
        {
            case ConnectRequest.MessageOneofCase.StepStarted:
                if (_started.Count >= MaxStartedAttempts)
                {
                    // Attempts whose end this replica never sees (lease lost, result sent to another replica) stay
                    // here: at the cap, the oldest half goes, so durations keep being measured.
                    var cutoff = _started.Values.Order().ElementAt(_started.Count / 2);
                    foreach (var (old, at) in _started)
                    {
                        if (at <= cutoff)
                        {
                            _started.TryRemove(old, out _);
                        }
                    }
                }

                _started[token] = now;

                break;
            case ConnectRequest.MessageOneofCase.StepCompleted:
                Finished("succeeded", token, now);
                break;
            case ConnectRequest.MessageOneofCase.StepFailed:
                var failed = report.StepFailed;
                Finished(failed.Cancelled ? "cancelled" : failed.TimedOut ? "timed_out" : "failed", token, now);
                break;
            case ConnectRequest.MessageOneofCase.StepDeclined:
                _started.TryRemove(token, out _);
                break;
            default:
                break;
        }
    }

    private void Finished(string outcome, long token, DateTimeOffset now)
    {
        _finished.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
        if (_started.TryRemove(token, out var started))
        {
            _stepDuration.Record(Math.Max(0, (now - started).TotalSeconds));
        }
    }

    private bool TryTrack(string ns, string queue, out LatencyWindowSamples samples)
    {
        samples = null!;
        if (_latencies.Count >= MaxTrackedQueues * 4 || _latencies.Keys.Count(k => k.Namespace == ns) >= MaxTrackedQueues)
        {
            return false;
        }

        samples = _latencies.GetOrAdd((ns, queue), _ => new LatencyWindowSamples());
        return true;
    }

    /// <summary>A ring of the newest dispatch latencies of one queue, with when each was measured.</summary>
    private sealed class LatencyWindowSamples
    {
        private readonly Lock _gate = new();
        private readonly (DateTimeOffset At, double Seconds)[] _ring = new (DateTimeOffset, double)[MaxSamplesPerQueue];
        private int _next;
        private int _count;

        public void Add(DateTimeOffset at, double seconds)
        {
            lock (_gate)
            {
                _ring[_next] = (at, seconds);
                _next = (_next + 1) % _ring.Length;
                _count = Math.Min(_count + 1, _ring.Length);
            }
        }

        public double[] Since(DateTimeOffset from)
        {
            lock (_gate)
            {
                var values = new List<double>(_count);
                for (var i = 0; i < _count; i++)
                {
                    var (at, seconds) = _ring[i];
                    if (at >= from)
                    {
                        values.Add(seconds);
                    }
                }

                return [.. values];
            }
        }
    }
}
