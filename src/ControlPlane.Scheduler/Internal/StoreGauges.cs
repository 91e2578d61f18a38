using System.Diagnostics.Metrics;
using ControlPlane.Scheduler.Services;
using ControlPlane.V1;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// Gauges of store-wide state: READY steps per queue, agents connected, agent slots, runs by state. Every replica
/// reads the same store, so each series carries scheduler_id and a dashboard takes max() over replicas, never sum().
/// A scrape never waits for the store: it reads the last snapshot, and when that is older than
/// <see cref="RefreshInterval"/> one refresh (three store calls per open namespace) starts in the background.
/// </summary>
internal sealed class StoreGauges
{
    /// <summary>Queue label values: the first this many (namespace, queue) pairs by name; the rest count as queue "other".</summary>
    public const int MaxQueueLabels = 100;

    /// <summary>The queue label of the queues past <see cref="MaxQueueLabels"/>.</summary>
    public const string OtherQueue = "other";

    /// <summary>Runs counted per namespace for controlplane_runs: the newest this many.</summary>
    public const int MaxRunsCounted = 10_000;

    private static readonly RunState[] RunStates =
        [RunState.Pending, RunState.Running, RunState.Paused, RunState.Succeeded, RunState.Failed, RunState.Cancelling, RunState.Cancelled];

    private readonly Func<IReadOnlyList<NamespaceRuntime>> _namespaces;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly KeyValuePair<string, object?> _replica;
    private Snapshot _snapshot = new([], [], [], [], DateTimeOffset.MinValue);
    private int _refreshing;

    public StoreGauges(Meter meter, string schedulerId, Func<IReadOnlyList<NamespaceRuntime>> namespaces, TimeProvider time, ILogger logger)
    {
        _namespaces = namespaces;
        _time = time;
        _logger = logger;
        _replica = new("scheduler_id", schedulerId);
        meter.CreateObservableGauge("controlplane_queue_ready_steps", () => Current().Queues, null,
            "READY steps per queue (store-wide; every replica reports the same value: take max over scheduler_id).");
        meter.CreateObservableGauge("controlplane_agents_connected", () => Current().Agents, null,
            "Agents connected (CONNECTED or DRAINING), store-wide.");
        meter.CreateObservableGauge("controlplane_agent_slots", () => Current().Slots, null,
            "Slots of the connected agents by state (used, free), store-wide.");
        meter.CreateObservableGauge("controlplane_runs", () => Current().Runs, null,
            $"Runs by state, store-wide (the newest {MaxRunsCounted} of each namespace).");
    }

    /// <summary>How old a snapshot may be before a scrape starts a refresh. Default is 5 s.</summary>
    public TimeSpan RefreshInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The last snapshot, starting a refresh in the background when it is stale.</summary>
    private Snapshot Current()
    {
        var snapshot = Volatile.Read(ref _snapshot);
        if (_time.GetUtcNow() - snapshot.TakenAt >= RefreshInterval && Interlocked.Exchange(ref _refreshing, 1) == 0)
        {
            _ = Task.Run(RefreshAsync);
        }

        return snapshot;
    }

    /// <summary>Reads the store of every open namespace once; a namespace whose store fails keeps no series until it answers.</summary>
    internal async Task RefreshAsync()
    {
        try
        {
            var queues = new List<(string Namespace, string Queue, long Ready)>();
            var agents = new List<Measurement<long>>();
            var slots = new List<Measurement<long>>();
            var runs = new List<Measurement<long>>();
            foreach (var ns in _namespaces())
            {
                try
                {
                    var stats = await ns.Store.GetStatsAsync().ConfigureAwait(false);
                    var listed = await ns.Store.ListAgentsAsync().ConfigureAwait(false);
                    var byState = await CountRunsAsync(ns.Store).ConfigureAwait(false);
                    queues.AddRange(stats.Queues.Select(q => (ns.Name, q.Queue, q.Ready)));
                    var live = listed.Where(a => a.State is AgentState.Connected or AgentState.Draining).ToList();
                    var nsTag = new KeyValuePair<string, object?>("namespace", ns.Name);
                    agents.Add(new(live.Count, _replica, nsTag));
                    var used = live.Sum(a => (long)a.UsedSlots);
                    slots.Add(new(used, _replica, nsTag, new("state", "used")));
                    slots.Add(new(Math.Max(0, live.Sum(a => (long)a.Slots) - used), _replica, nsTag, new("state", "free")));
                    foreach (var state in RunStates)
                    {
                        runs.Add(new(byState.GetValueOrDefault(state), _replica, nsTag, new("state", StateName(state))));
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    SchedulerLog.StoreCallFailed(_logger, "metrics refresh of namespace " + ns.Name, ex);
                }
            }

            Volatile.Write(ref _snapshot, new Snapshot(CapQueues(queues), [.. agents], [.. slots], [.. runs], _time.GetUtcNow()));
        }
        finally
        {
            Volatile.Write(ref _refreshing, 0);
        }
    }

    /// <summary>The queue series: the first <see cref="MaxQueueLabels"/> pairs by (namespace, queue) as they are, the rest summed per namespace as "other".</summary>
    internal Measurement<long>[] CapQueues(IEnumerable<(string Namespace, string Queue, long Ready)> queues)
    {
        var ordered = queues.OrderBy(q => q.Namespace, StringComparer.Ordinal).ThenBy(q => q.Queue, StringComparer.Ordinal).ToList();
        var series = new List<Measurement<long>>();
        var other = new SortedDictionary<string, long>(StringComparer.Ordinal);
        for (var i = 0; i < ordered.Count; i++)
        {
            var (ns, queue, ready) = ordered[i];
            if (i < MaxQueueLabels && queue != OtherQueue)
            {
                series.Add(new(ready, _replica, new("namespace", ns), new("queue", queue)));
            }
            else
            {
                other[ns] = other.GetValueOrDefault(ns) + ready;
            }
        }

        foreach (var (ns, ready) in other)
        {
            series.Add(new(ready, _replica, new("namespace", ns), new("queue", OtherQueue)));
        }

        return [.. series];
    }

    private static async Task<Dictionary<RunState, long>> CountRunsAsync(IRunStore store)
    {
        var counts = new Dictionary<RunState, long>();
        string? page = null;
        var seen = 0;
        do
        {
            var runs = await store.ListRunsAsync(new RunQuery(PageSize: 1000, PageToken: page)).ConfigureAwait(false);
            foreach (var run in runs.Runs)
            {
                counts[run.State] = counts.GetValueOrDefault(run.State) + 1;
            }

            seen += runs.Runs.Count;
            page = runs.NextPageToken;
        }
        while (!string.IsNullOrEmpty(page) && seen < MaxRunsCounted);
        return counts;
    }

    private static string StateName(RunState state) => state switch
    {
        RunState.Pending => "pending",
        RunState.Running => "running",
        RunState.Paused => "paused",
        RunState.Succeeded => "succeeded",
        RunState.Failed => "failed",
        RunState.Cancelling => "cancelling",
        RunState.Cancelled => "cancelled",
        _ => "unspecified",
    };

    private sealed record Snapshot(
        Measurement<long>[] Queues,
        Measurement<long>[] Agents,
        Measurement<long>[] Slots,
        Measurement<long>[] Runs,
        DateTimeOffset TakenAt);
}
