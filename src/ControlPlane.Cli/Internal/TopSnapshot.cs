using ControlPlane.Client;
using ControlPlane.V1;
using Grpc.Core;

namespace ControlPlane.Cli.Internal;

/// <summary>A step that holds a slot (ASSIGNED or RUNNING), with the run it belongs to.</summary>
internal sealed record TopStep(string RunId, string RunName, Step Step, DateTimeOffset? Since);

/// <summary>
/// What <c>cpctl top</c> shows at one moment: queues, caps, agents and the steps that hold slots. Bounded: it looks at
/// the newest <see cref="MaxRuns"/> running runs only and counts (up to a point) how many more there are.
/// </summary>
internal sealed record TopSnapshot(
    DateTimeOffset Taken,
    IReadOnlyList<QueueStats> Queues,
    IReadOnlyList<SlotCounter> Caps,
    int MoreCaps,
    IReadOnlyList<V1.Agent> Agents,
    IReadOnlyList<TopStep> Steps,
    int RunsLookedAt,
    int MoreRuns,
    bool MoreRunsUncounted)
{
    /// <summary>Running runs whose steps are fetched (GetRun each), newest first.</summary>
    public const int MaxRuns = 50;

    /// <summary>Cap counters shown; the rest are counted.</summary>
    public const int MaxCaps = 50;

    /// <summary>Running runs beyond <see cref="MaxRuns"/> counted with one more ListRuns page; past that, "N+ more".</summary>
    private const int CountedBeyond = 1000;

    /// <summary>GetRun calls in flight at once, so a refresh does not flood the scheduler.</summary>
    private const int Parallelism = 8;

    public static async Task<TopSnapshot> LoadAsync(ControlPlaneClient client, TimeProvider time, CancellationToken cancellationToken)
    {
        var statsCall = client.GetStatsAsync(cancellationToken);
        var agentsCall = client.ListAgentsAsync(cancellationToken);
        var runsCall = client.ListRunsAsync(new ListRunsRequest { State = RunState.Running, PageSize = MaxRuns }, cancellationToken);
        var stats = await statsCall.ConfigureAwait(false);
        var agents = await agentsCall.ConfigureAwait(false);
        var runs = await runsCall.ConfigureAwait(false);

        var more = 0;
        var uncounted = false;
        if (runs.NextPageToken.Length > 0)
        {
            var rest = await client.ListRunsAsync(
                new ListRunsRequest { State = RunState.Running, PageSize = CountedBeyond, PageToken = runs.NextPageToken },
                cancellationToken).ConfigureAwait(false);
            more = rest.Runs.Count;
            uncounted = rest.NextPageToken.Length > 0;
        }

        var details = new Run?[runs.Runs.Count];
        await Parallel.ForEachAsync(
            Enumerable.Range(0, runs.Runs.Count),
            new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = cancellationToken },
            async (i, ct) =>
            {
                try
                {
                    details[i] = await client.GetRunAsync(runs.Runs[i].Id, ct).ConfigureAwait(false);
                }
                catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
                {
                    // Deleted between the list and the get: nothing of it to show.
                }
            }).ConfigureAwait(false);

        var steps = details
            .Where(r => r is not null)
            .SelectMany(r => r!.Steps
                .Where(s => s.State is StepState.Assigned or StepState.Running)
                .Select(s => new TopStep(r.Id, r.Name, s, Since(s))))
            .ToList();

        // Queue and concurrency-key counters are the shared caps; agent and run counters show in their own lines.
        var caps = stats.Slots
            .Where(s => s.Kind is "queue" or "key")
            .OrderBy(s => s.Kind, StringComparer.Ordinal)
            .ThenBy(s => s.Name, StringComparer.Ordinal)
            .ToList();
        return new TopSnapshot(
            time.GetUtcNow(),
            [.. stats.Queues.OrderBy(q => q.Queue, StringComparer.Ordinal)],
            [.. caps.Take(MaxCaps)],
            Math.Max(0, caps.Count - MaxCaps),
            [.. agents.OrderBy(a => a.AgentId, StringComparer.Ordinal)],
            steps,
            runs.Runs.Count,
            more,
            uncounted);
    }

    /// <summary>"and 3 more running runs not shown", or null when every running run was looked at.</summary>
    public string? MoreRunsText() => MoreRuns == 0 && !MoreRunsUncounted
        ? null
        : $"and {MoreRuns}{(MoreRunsUncounted ? "+" : string.Empty)} more running runs not shown (only the newest {MaxRuns} are looked at)";

    /// <summary>When the step entered its current state: its last transition, else when it started.</summary>
    private static DateTimeOffset? Since(Step step) =>
        step.History.Count > 0 && step.History[^1].Time is { } last ? last.ToDateTimeOffset()
        : step.StartedAt?.ToDateTimeOffset();

    /// <summary>12ms, 1.5s, 4m3s, 2h5m: short and exact enough for a glance.</summary>
    public static string Age(TimeSpan value)
    {
        if (value < TimeSpan.Zero)
        {
            value = TimeSpan.Zero;
        }

        return value.TotalSeconds < 1 ? $"{(int)value.TotalMilliseconds}ms"
            : value.TotalMinutes < 1 ? $"{(int)value.TotalSeconds}s"
            : value.TotalHours < 1 ? $"{value.Minutes}m{value.Seconds}s"
            : $"{(int)value.TotalHours}h{value.Minutes}m";
    }

    /// <summary>A dispatch latency, or "-" when the replica dispatched nothing of the queue lately.</summary>
    public static string Latency(Google.Protobuf.WellKnownTypes.Duration? value)
    {
        if (value is null)
        {
            return "-";
        }

        var span = value.ToTimeSpan();
        return span.TotalSeconds < 1
            ? TextRender.Number(Math.Round(span.TotalMilliseconds, 1)) + "ms"
            : TextRender.Number(Math.Round(span.TotalSeconds, 2)) + "s";
    }

    /// <summary>How long ago <paramref name="time"/> was, or "-".</summary>
    public string Ago(DateTimeOffset? time) => time is { } t ? Age(Taken - t) : "-";

    public string Ago(Google.Protobuf.WellKnownTypes.Timestamp? time) => Ago(time?.ToDateTimeOffset());
}
