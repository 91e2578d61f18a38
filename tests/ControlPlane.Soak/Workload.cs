using System.Collections.Concurrent;
using System.Globalization;
using ControlPlane.Client;
using ControlPlane.V1;
using Grpc.Core;

namespace ControlPlane.Soak;

/// <summary>A run the driver submitted, what it expects of it, and what it has seen of it.</summary>
internal sealed class TrackedRun(int number, Plan plan, Random random)
{
    public int Number { get; } = number;

    public Plan Plan { get; } = plan;

    /// <summary>This run's own choices (gate delays), so they do not depend on the order threads run in.</summary>
    public Random Random { get; } = random;

    public string Id { get; set; } = "";

    public DateTime SubmittedAt { get; set; }

    /// <summary>When the driver last saw the run terminal; null while it is not.</summary>
    public DateTime? TerminalAt { get; set; }

    /// <summary>The last GetRun.</summary>
    public Run? Last { get; set; }

    /// <summary>
    /// With a retention, step id to the output GetStepOutput returned once the run ended (or "!" and the error): the run
    /// may be deleted before the end-of-soak checks.
    /// </summary>
    public ConcurrentDictionary<string, string> OutputsAtEnd { get; } = new(StringComparer.Ordinal);

    /// <summary>Set when the store answered NOT_FOUND for the run (it was lost), with when.</summary>
    public DateTime? MissingAt { get; set; }

    public long LastSeq { get; set; }

    public DateTime? CancelledAt { get; set; }

    /// <summary>Gate id to when the driver last decided it.</summary>
    public ConcurrentDictionary<string, DateTime> Decided { get; } = new(StringComparer.Ordinal);

    /// <summary>Step id to the attempts seen SUCCEEDED (in events or in history), each with when it was first seen.</summary>
    public ConcurrentDictionary<string, ConcurrentDictionary<int, DateTime>> Successes { get; } = new(StringComparer.Ordinal);

    public void SawSuccess(string stepId, int attempt) =>
        Successes.GetOrAdd(stepId, _ => new ConcurrentDictionary<int, DateTime>()).TryAdd(attempt, DateTime.UtcNow);

    public override string ToString() => $"{Id} ({Plan.Kind} #{Number})";
}

/// <summary>
/// The continuous mix: submits runs while fewer than <see cref="MaxLive"/> are in flight, follows each with WatchRun
/// (and GetRun every two seconds, which also recovers what a watch cannot: events a Redis crash took back), decides its
/// gates, cancels the runs meant to be cancelled.
/// </summary>
internal sealed class Workload(Api api, Pipelines pipelines, Journal journal, int seed)
{
    public const int MaxLive = 6;

    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(2);

    private readonly Random _random = new(seed);
    private readonly ConcurrentDictionary<TrackedRun, Task> _trackers = new();
    private readonly List<TrackedRun> _runs = [];
    private int _submitFailures;

    public IReadOnlyList<TrackedRun> Runs
    {
        get
        {
            lock (_runs)
            {
                return _runs.ToList();
            }
        }
    }

    public int SubmitFailures => _submitFailures;

    /// <summary>Submits runs until <paramref name="stop"/>, keeping at most <see cref="MaxLive"/> in flight.</summary>
    public async Task SubmitAsync(CancellationToken stop)
    {
        var number = 0;
        while (!stop.IsCancellationRequested)
        {
            if (_trackers.Count < MaxLive)
            {
                number++;
                var kind = Pipelines.PickKind(_random);
                var run = new TrackedRun(number, pipelines.Build(kind, number, _random), new Random(seed * 7919 + number));
                var pause = TimeSpan.FromMilliseconds(_random.Next(200, 1200));
                if (await SubmitOneAsync(run))
                {
                    Track(run);
                }

                await Delay(pause, stop);
            }
            else
            {
                await Delay(TimeSpan.FromMilliseconds(200), stop);
            }
        }
    }

    /// <summary>Waits until every tracked run is terminal (or lost), tracking again any run the store shows not terminal any more.</summary>
    public async Task<bool> DrainAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            var pending = _trackers.Values.ToArray();
            if (pending.Length > 0)
            {
                await Task.WhenAny(Task.WhenAll(pending), Task.Delay(deadline - DateTime.UtcNow));
                continue;
            }

            // A Redis crash can take a run's last second back, its end included: read every run again before calling it done.
            var reopened = 0;
            foreach (var run in Runs.Where(r => r.MissingAt is null))
            {
                var current = await ReadAsync(run);
                if (current is not null && !ControlPlaneClient.IsTerminal(current.State))
                {
                    journal.Info($"{run} is {current.State} again; tracking it again");
                    run.TerminalAt = null;
                    Track(run);
                    reopened++;
                }
            }

            if (reopened == 0)
            {
                return true;
            }
        }

        return _trackers.IsEmpty;
    }

    private async Task<bool> SubmitOneAsync(TrackedRun run)
    {
        try
        {
            // The idempotency key makes the submit safe to repeat on the other replica.
            var response = await api.CallAsync(c => c.SubmitRunAsync(run.Plan.Spec, $"soak-{seed}-{run.Number}"));
            run.Id = response.Run.Id;
            run.SubmittedAt = DateTime.UtcNow;
            lock (_runs)
            {
                _runs.Add(run);
            }

            journal.Info($"submitted {run}: {run.Plan.Spec.Steps.Count} steps, expects {run.Plan.ExpectedRun}");
            return true;
        }
        catch (RpcException ex)
        {
            Interlocked.Increment(ref _submitFailures);
            journal.Info($"submit of {run.Plan.Kind} #{run.Number} failed: {ex.Status}");
            return false;
        }
    }

    private void Track(TrackedRun run) => _trackers[run] = Task.Run(async () =>
    {
        try
        {
            await FollowAsync(run);
        }
        finally
        {
            _trackers.TryRemove(run, out _);
        }
    });

    private async Task FollowAsync(TrackedRun run)
    {
        using var done = new CancellationTokenSource();
        var watch = WatchAsync(run, done.Token);
        var cancel = run.Plan.CancelAfter is { } after ? CancelLaterAsync(run, after, done.Token) : Task.CompletedTask;
        try
        {
            while (true)
            {
                var current = await ReadAsync(run);
                if (current is null)
                {
                    return;
                }

                foreach (var gate in current.Steps.Where(s => s.State == StepState.WaitingApproval))
                {
                    // A decision the store lost (or one still on its way) is made again after a while.
                    if (!run.Decided.TryGetValue(gate.Id, out var at) || DateTime.UtcNow - at > TimeSpan.FromSeconds(5))
                    {
                        await DecideAsync(run, gate.Id);
                    }
                }

                if (run.Plan.CancelAfter is { } cancelAfter && run.CancelledAt is { } cancelledAt && DateTime.UtcNow - cancelledAt > TimeSpan.FromSeconds(10)
                    && current.State is not (RunState.Cancelling or RunState.Cancelled))
                {
                    journal.Info($"{run} is {current.State} {(DateTime.UtcNow - cancelledAt).TotalSeconds:0} s after its cancel; cancelling again");
                    await CancelAsync(run);
                }

                if (ControlPlaneClient.IsTerminal(current.State))
                {
                    if (run.Plan.Spec.Retention is not null)
                    {
                        await KeepOutputsAsync(run, current);
                    }

                    run.TerminalAt = DateTime.UtcNow;
                    journal.Info($"{run} ended {current.State}: {Describe(current)}");
                    return;
                }

                await Task.Delay(PollInterval);
            }
        }
        finally
        {
            await done.CancelAsync();
            await watch;
            await cancel;
        }
    }

    /// <summary>The outputs of a finished run's succeeded steps, read before its retention can delete them.</summary>
    private async Task KeepOutputsAsync(TrackedRun run, Run current)
    {
        var gates = run.Plan.Spec.Steps.Where(s => s.Kind == StepKind.Gate).Select(s => s.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var step in current.Steps.Where(s => s.State == StepState.Succeeded && !gates.Contains(s.Id)))
        {
            try
            {
                run.OutputsAtEnd[step.Id] = (await api.CallAsync(c => c.GetStepOutputAsync(run.Id, step.Id))).Data.ToStringUtf8();
            }
            catch (RpcException ex)
            {
                run.OutputsAtEnd[step.Id] = "!" + ex.Status;
            }
        }
    }

    /// <summary>GetRun, recording what it shows; null when the store no longer has the run.</summary>
    private async Task<Run?> ReadAsync(TrackedRun run)
    {
        try
        {
            var current = await api.CallAsync(c => c.GetRunAsync(run.Id));
            run.Last = current;
            foreach (var step in current.Steps)
            {
                foreach (var transition in step.History.Where(h => h.ToState == Invariants.SucceededName))
                {
                    run.SawSuccess(step.Id, transition.Attempt);
                }
            }

            return current;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            run.MissingAt ??= DateTime.UtcNow;
            journal.Info($"{run} is not in the store any more: {ex.Status.Detail}");
            return null;
        }
        catch (RpcException ex)
        {
            journal.Info($"GetRun {run} failed for 2 minutes on both replicas: {ex.Status}");
            return run.Last;
        }
    }

    private async Task WatchAsync(TrackedRun run, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var client = api.Current;
            try
            {
                await foreach (var e in client.WatchRunAsync(run.Id, run.LastSeq, stop))
                {
                    run.LastSeq = e.Seq;
                    if (e.EventCase == RunEvent.EventOneofCase.StepStateChanged)
                    {
                        var change = e.StepStateChanged;
                        if (change.ToState == StepState.Succeeded)
                        {
                            run.SawSuccess(change.StepId, change.Attempt);
                        }
                        else if (change.ToState == StepState.WaitingApproval && !run.Decided.ContainsKey(change.StepId))
                        {
                            _ = DecideAsync(run, change.StepId);
                        }
                    }
                }

                return;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && stop.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException ex) when (ex.StatusCode != StatusCode.NotFound)
            {
                // The replica went away under the watch: go on from the last event on the other one.
                api.Switch(client);
                await Delay(TimeSpan.FromMilliseconds(500), stop);
            }
            catch (RpcException)
            {
                return;
            }
        }
    }

    private async Task DecideAsync(TrackedRun run, string gateId)
    {
        run.Decided[gateId] = DateTime.UtcNow;
        var approve = run.Plan.Gates.GetValueOrDefault(gateId, true);
        double wait;
        lock (run.Random)
        {
            wait = run.Random.Next(200, 1500);
        }

        await Task.Delay(TimeSpan.FromMilliseconds(wait));
        run.Decided[gateId] = DateTime.UtcNow;
        try
        {
            await api.CallAsync(c => c.ApproveGateAsync(run.Id, gateId, approve, "soak", approve ? "approved by the soak" : "rejected by the soak"), TimeSpan.FromSeconds(30));
            journal.Info($"{(approve ? "approved" : "rejected")} {run}/{gateId}");
        }
        catch (RpcException ex)
        {
            // Decided already (the other path got there first), or the store is away: the poll decides again if needed.
            journal.Info($"deciding {run}/{gateId} failed: {ex.Status}");
        }
    }

    private async Task CancelLaterAsync(TrackedRun run, TimeSpan after, CancellationToken stop)
    {
        await Delay(after, stop);
        if (!stop.IsCancellationRequested)
        {
            await CancelAsync(run);
        }
    }

    private async Task CancelAsync(TrackedRun run)
    {
        run.CancelledAt = DateTime.UtcNow;
        try
        {
            var after = await api.CallAsync(c => c.CancelRunAsync(run.Id, "cancelled by the soak"), TimeSpan.FromSeconds(60));
            journal.Info($"cancelled {run}: now {after.State}");
        }
        catch (RpcException ex)
        {
            journal.Info($"cancel of {run} failed: {ex.Status}");
        }
    }

    public static string Describe(Run run) =>
        string.Join(", ", run.Steps.Select(s => $"{s.Id}:{Short(s.State)}#{s.Attempt}{(s.AgentId.Length > 0 ? "@" + s.AgentId : "")}{(s.Error.Length > 0 ? " '" + Trim(s.Error) + "'" : "")}"));

    public static string Short(StepState state) => state.ToString().ToUpperInvariant();

    private static string Trim(string text) => text.Length > 120 ? text[..120] + "..." : text;

    private static async Task Delay(TimeSpan delay, CancellationToken stop)
    {
        try
        {
            await Task.Delay(delay, stop);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public static string Seconds(TimeSpan span) => span.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s";
}
