using System.Diagnostics;
using System.Globalization;
using System.Text;
using ControlPlane.Client;
using ControlPlane.V1;
using Grpc.Core;
using StackExchange.Redis;

namespace ControlPlane.Soak;

/// <summary>One invariant's outcome: its name, the figures it was checked on, and how many violations it found.</summary>
internal sealed record CheckResult(string Name, string Figures, int Violations);

/// <summary>
/// The end-of-soak checks, once every run is terminal: each run and step ended as its pipeline expects, each succeeded
/// step has exactly one SUCCEEDED attempt whose output is the one the store returns, every counter is back to 0, no
/// lease or ready step is left (in the API and in Redis's own keys), no step process is alive, and every agent is
/// connected. Each violation is recorded in the journal with its run and step.
/// </summary>
internal sealed class Invariants(Api api, SoakCluster cluster, IDatabase redis, Journal journal, Workload workload, Chaos chaos, StepProcesses processes)
{
    public const string SucceededName = "STEP_STATE_SUCCEEDED";

    public const string RunsEnd = "runs end as their pipeline expects";
    public const string StepsEnd = "steps end as their pipeline expects";
    public const string OneSuccess = "each succeeded step has exactly one SUCCEEDED attempt";
    public const string Output = "each succeeded step's output is its succeeded attempt's";
    public const string NeverTwice = "no step is seen succeeding twice";
    public const string Counters = "slot, cap and budget counters are 0";
    public const string NoLease = "no lease, no READY step";
    public const string NoProcess = "no step process alive at the end";
    public const string NoOverlap = "no step process alive beside its replacement";
    public const string AgentsBack = "agents reconnect";
    public const string NoLoss = "an attempt is run again only after its agent was cut off or Redis was killed";

    private const string Prefix = "cp:{default}:";

    // Step states a step may not be left in once its run is terminal.
    private static readonly StepState[] Unfinished = [StepState.Blocked, StepState.Ready, StepState.Assigned, StepState.Running, StepState.RetryWait, StepState.WaitingApproval];

    public List<CheckResult> Results { get; } = [];

    /// <summary>Figures about the work done, for the summary.</summary>
    public List<string> Figures { get; } = [];

    public async Task CheckAsync()
    {
        await CheckRunsAsync();
        await CheckLeftoversAsync();
        await CheckProcessesAsync();
        CheckOverlaps();
        await CheckAgentsAsync();
    }

    private async Task CheckRunsAsync()
    {
        var runs = workload.Runs;
        int runsBad = 0, stepsBad = 0, oneBad = 0, outputBad = 0, twiceBad = 0, budgetBad = 0, notReady = 0;
        int steps = 0, succeeded = 0, attempts = 0, rerun = 0, resumed = 0, outputs = 0, lost = 0, resucceeded = 0;
        int lossBad = 0, superseded = 0, explained = 0, retained = 0;
        var byState = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var assigned = ReadAssignments();
        var ledger = ReadLedger();
        var ledgerByStep = ledger.ToLookup(l => (l.Run, l.Step));
        foreach (var run in runs)
        {
            Run final;
            try
            {
                final = await api.CallAsync(c => c.GetRunAsync(run.Id));
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound && DeletedByRetention(run))
            {
                // Its retention passed: checked as the driver saw it end, outputs as read then.
                final = run.Last!;
                retained++;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
            {
                if (chaos.RedisKilledAt is { } killed && run.SubmittedAt >= killed - TimeSpan.FromSeconds(3) && run.SubmittedAt <= killed)
                {
                    lost++;
                    journal.Info($"{run} submitted {Workload.Seconds(killed - run.SubmittedAt)} before the Redis kill -9 is gone with the AOF's last second (allowed)");
                }
                else
                {
                    runsBad += Violate(RunsEnd, run, "", $"{run.Plan.Kind} run is not in the store (submitted {Time(run.SubmittedAt)}; Redis kill -9 at {Time(chaos.RedisKilledAt)})");
                }

                continue;
            }

            run.Last = final;
            var stateName = final.State.ToString().ToUpperInvariant();
            byState[stateName] = byState.GetValueOrDefault(stateName) + 1;
            if (final.State != run.Plan.ExpectedRun)
            {
                runsBad += Violate(RunsEnd, run, "", $"{run.Plan.Kind} run ended {final.State}, expected {run.Plan.ExpectedRun}: {Workload.Describe(final)}{RunError(final)}");
            }

            foreach (var (unit, reserved) in final.BudgetReserved)
            {
                if (Math.Abs(reserved) > 1e-6)
                {
                    budgetBad += Violate(Counters, run, "", $"budget {unit} still reserved: {reserved.ToString(CultureInfo.InvariantCulture)}");
                }
            }

            foreach (var step in final.Steps)
            {
                steps++;
                attempts += step.Attempt;
                var spec = run.Plan.Spec.Steps.Single(s => s.Id == step.Id);
                var allowed = run.Plan.ExpectedSteps[step.Id];
                if (Unfinished.Contains(step.State))
                {
                    notReady += Violate(NoLease, run, step.Id, $"left {step.State} (attempt {step.Attempt}) in a {final.State} run{StepError(step)}");
                }
                else if (!allowed.Contains(step.State))
                {
                    stepsBad += Violate(StepsEnd, run, step.Id, $"ended {step.State} at attempt {step.Attempt}, expected {string.Join(" or ", allowed)}{StepError(step)}; history: {History(step)}");
                }

                lossBad += CheckSupersededAttempts(run, step, assigned, ledgerByStep, ref superseded, ref explained);
                var successes = step.History.Where(h => h.ToState == SucceededName).ToList();
                var expectedSuccesses = step.State == StepState.Succeeded ? 1 : 0;
                if (successes.Count != expectedSuccesses)
                {
                    oneBad += Violate(OneSuccess, run, step.Id, $"{step.State} with {successes.Count} SUCCEEDED transitions in its history (attempts {string.Join(", ", successes.Select(s => s.Attempt))}); history: {History(step)}");
                }

                if (step.State == StepState.Succeeded)
                {
                    succeeded++;
                    rerun += step.Attempt > 1 ? 1 : 0;
                }

                if (step.State == StepState.Succeeded && spec.Kind != StepKind.Gate && successes.Count > 0)
                {
                    outputs++;
                    var attempt = successes[^1].Attempt;
                    string text;
                    try
                    {
                        text = run.OutputsAtEnd.TryGetValue(step.Id, out var kept)
                            ? (kept.StartsWith('!') ? throw new RpcException(new Status(StatusCode.Unknown, "when the run ended: " + kept[1..])) : kept)
                            : (await api.CallAsync(c => c.GetStepOutputAsync(run.Id, step.Id))).Data.ToStringUtf8();
                    }
                    catch (RpcException ex)
                    {
                        outputBad += Violate(Output, run, step.Id, $"GetStepOutput failed: {ex.Status}");
                        continue;
                    }

                    var parsed = Pipelines.ParseOutput(text);
                    if (parsed is null || parsed.Value.Run != run.Id || parsed.Value.Step != step.Id || parsed.Value.Attempt != attempt)
                    {
                        outputBad += Violate(Output, run, step.Id, $"the store returns '{Clip(text)}' but attempt {attempt} succeeded (step at attempt {step.Attempt})");
                    }
                    else if (text.Contains(" from=", StringComparison.Ordinal) && !text.EndsWith(" from=0", StringComparison.Ordinal))
                    {
                        resumed++;
                    }
                }

                if (run.Successes.TryGetValue(step.Id, out var seen) && seen.Count > 1)
                {
                    var ordered = seen.OrderBy(s => s.Value).ToList();
                    var detail = string.Join(", ", ordered.Select(s => $"attempt {s.Key} at {Time(s.Value)}"));
                    if (chaos.RedisKilledAt is { } killed && ordered[0].Value <= killed && ordered[^1].Value >= killed)
                    {
                        resucceeded++;
                        journal.Info($"{run}/{step.Id} succeeded again after the Redis kill -9 took its first success back (allowed): {detail}");
                    }
                    else
                    {
                        twiceBad += Violate(NeverTwice, run, step.Id, $"seen SUCCEEDED as {detail}; history: {History(step)}");
                    }
                }
            }
        }

        var ranTwice = ledger.GroupBy(l => (l.Run, l.Step)).Count(g => g.Count() > 1);
        Results.Add(new CheckResult(RunsEnd, $"{runs.Count} runs ({string.Join(", ", byState.Select(kv => $"{kv.Value} {kv.Key}"))}){(lost > 0 ? $", {lost} lost in the Redis kill -9 (allowed)" : "")}{(retained > 0 ? $", {retained} already deleted by their retention (checked as seen when they ended)" : "")}", runsBad));
        Results.Add(new CheckResult(StepsEnd, $"{steps} steps", stepsBad));
        Results.Add(new CheckResult(OneSuccess, $"{succeeded} succeeded steps, {attempts} attempts, {rerun} succeeded at attempt 2 or later", oneBad));
        Results.Add(new CheckResult(Output, $"{outputs} outputs compared with GetStepOutput, {resumed} from a resumed checkpoint", outputBad));
        Results.Add(new CheckResult(NeverTwice, $"{ledger.Count} step processes ran to their end, {ranTwice} steps ran to their end more than once{(resucceeded > 0 ? $", {resucceeded} succeeded again after the Redis kill -9 (allowed)" : "")}", twiceBad));
        Results.Add(new CheckResult(NoLease + " (GetRun)", $"{steps} steps", notReady));
        Results.Add(new CheckResult(NoLoss, $"{superseded} attempts superseded other than by design, {explained} of them after their agent was cut off or Redis was killed", lossBad));
        Results.Add(new CheckResult(Counters + " (runs' budget)", $"{runs.Count} runs", budgetBad));
        Figures.Add($"steps {steps}: {succeeded} succeeded, {attempts} attempts, {rerun} succeeded after a re-run, {resumed} resumed from a checkpoint; ledger {ledger.Count} completions");
    }

    /// <summary>Counters, leases, ready sets: read until they are all clear or 20 s have passed (a reaper may still be on its way), then judged.</summary>
    private async Task CheckLeftoversAsync()
    {
        var clock = Stopwatch.StartNew();
        Leftovers left;
        while (true)
        {
            left = await ReadLeftoversAsync();
            if ((left.Counters.Count == 0 && left.Keys.Count == 0) || clock.Elapsed > TimeSpan.FromSeconds(20))
            {
                break;
            }

            await Task.Delay(TimeSpan.FromSeconds(1));
        }

        foreach (var (run, step, detail) in left.Counters)
        {
            Violate(Counters, run, step, detail);
        }

        foreach (var (run, step, detail) in left.Keys)
        {
            Violate(NoLease, run, step, detail);
        }

        Results.Add(new CheckResult(Counters + " (GetStats, ListAgents, Redis)", left.CounterFigures, left.Counters.Count));
        Results.Add(new CheckResult(NoLease + " (Redis keys)", left.KeyFigures, left.Keys.Count));
    }

    private sealed record Leftovers(List<(string Run, string Step, string Detail)> Counters, List<(string Run, string Step, string Detail)> Keys, string CounterFigures, string KeyFigures);

    private async Task<Leftovers> ReadLeftoversAsync()
    {
        var counters = new List<(string, string, string)>();
        var keys = new List<(string, string, string)>();
        var stats = await api.CallAsync(c => c.GetStatsAsync());
        foreach (var slot in stats.Slots.Where(s => s.Used != 0))
        {
            counters.Add((slot.Kind == "run" ? slot.Name : "", "", $"GetStats slot counter {slot.Kind}/{slot.Name} used {slot.Used} (limit {slot.Limit})"));
        }

        foreach (var queue in stats.Queues.Where(q => q.Ready != 0 || q.Running != 0))
        {
            counters.Add(("", "", $"GetStats queue {queue.Queue}: {queue.Ready} ready, {queue.Running} running"));
        }

        var agents = await api.CallAsync(c => c.ListAgentsAsync());
        foreach (var agent in agents.Where(a => a.UsedSlots != 0))
        {
            counters.Add(("", "", $"agent {agent.AgentId} has {agent.UsedSlots} slots in use ({agent.State})"));
        }

        var slots = await redis.HashGetAllAsync(Prefix + "slots");
        var counted = 0;
        foreach (var entry in slots)
        {
            var name = (string)entry.Name!;
            if (name.StartsWith("q:", StringComparison.Ordinal) || name.StartsWith("r:", StringComparison.Ordinal) || name.StartsWith("k:", StringComparison.Ordinal) || name.StartsWith("b:", StringComparison.Ordinal))
            {
                counted++;
                if (double.TryParse((string?)entry.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && Math.Abs(value) > 1e-6)
                {
                    counters.Add(("", "", $"Redis {Prefix}slots field {name} = {entry.Value}"));
                }
            }
        }

        var leases = await redis.SortedSetRangeByRankAsync(Prefix + "leases");
        foreach (var member in leases)
        {
            // "token|run|step"
            var parts = ((string)member!).Split('|');
            keys.Add((parts.ElementAtOrDefault(1) ?? "", parts.ElementAtOrDefault(2) ?? "", $"lease left in {Prefix}leases: {member}"));
        }

        foreach (var (key, what) in new[] { ("timeouts", "timeout"), ("retry", "retry") })
        {
            foreach (var member in await redis.SortedSetRangeByRankAsync(Prefix + key))
            {
                var parts = ((string)member!).Split('|');
                keys.Add((parts.Length == 3 ? parts[1] : parts[0], parts[^1], $"{what} left in {Prefix}{key}: {member}"));
            }
        }

        foreach (var member in await redis.SetMembersAsync(Prefix + "live"))
        {
            keys.Add(((string)member!, "", $"run still in {Prefix}live (runs not finished)"));
        }

        var server = redis.Multiplexer.GetServers()[0];
        var readySets = 0;
        await foreach (var key in server.KeysAsync(pattern: Prefix + "rq:*"))
        {
            readySets++;
            foreach (var member in await redis.SortedSetRangeByRankAsync(key))
            {
                var parts = ((string)member!).Split('|');
                keys.Add((((string)key!)[(Prefix.Length + 3)..].Split(':')[0], parts[^1], $"READY step left in {key}: {member}"));
            }
        }

        var rings = new List<string>();
        await foreach (var key in server.KeysAsync(pattern: Prefix + "q:*"))
        {
            rings.Add($"{((string)key!)[Prefix.Length..]} {await redis.SortedSetLengthAsync(key)}");
        }

        var counterFigures = $"{stats.Slots.Count} GetStats counters, {stats.Queues.Count} queues, {agents.Count} agents, {counted} Redis slot fields";
        var keyFigures = $"{leases.Length} leases, {readySets} ready sets; queue rings (run entries, cleaned lazily): {(rings.Count == 0 ? "none" : string.Join(", ", rings))}";
        return new Leftovers(counters, keys, counterFigures, keyFigures);
    }

    private async Task CheckProcessesAsync()
    {
        // Cancelled and timed-out attempts get the kill grace period; give them that and a little more.
        var clock = Stopwatch.StartNew();
        var alive = processes.Scan();
        while (alive.Count > 0 && clock.Elapsed < SoakCluster.KillGrace + TimeSpan.FromSeconds(8))
        {
            await Task.Delay(TimeSpan.FromMilliseconds(500));
            alive = processes.Scan();
        }

        foreach (var process in alive)
        {
            Violate(NoProcess, process.RunId, process.StepId, $"{process} still alive {Workload.Seconds(clock.Elapsed)} after every run ended{RunStateOf(process.RunId, process.StepId)}");
        }

        // They are descendants of the agents this soak started; nothing else may go on running after it.
        foreach (var process in alive)
        {
            try
            {
                using var handle = System.Diagnostics.Process.GetProcessById(process.Pid);
                handle.Kill();
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // Gone in the meantime.
            }
        }

        Results.Add(new CheckResult(NoProcess, $"/proc scanned {processes.Scans + 1} times during and after the soak", alive.Count));
    }

    private void CheckOverlaps()
    {
        foreach (var (run, step, detail) in processes.Overlaps)
        {
            Violate(NoOverlap, run, step, detail);
        }

        Results.Add(new CheckResult(NoOverlap, $"{processes.Scans} scans of /proc, one a second", processes.Overlaps.Count));
    }

    private async Task CheckAgentsAsync()
    {
        var agents = await api.CallAsync(c => c.ListAgentsAsync());
        foreach (var node in cluster.Agents)
        {
            var agent = agents.FirstOrDefault(a => a.AgentId == node.Id);
            if (agent is null || agent.State != AgentState.Connected)
            {
                Violate(AgentsBack, "", "", $"{node.Id} is {(agent is null ? "unknown to the scheduler" : agent.State.ToString())} at the end");
            }
        }

        var earlier = journal.Violations.Count(v => v.Invariant == AgentsBack);
        var noticed = chaos.BlackholeNoticed.Count == 0 ? "no blackhole noticed" : $"blackholed streams noticed after {string.Join(", ", chaos.BlackholeNoticed.Select(Workload.Seconds))}";
        Results.Add(new CheckResult(AgentsBack, $"{cluster.Agents.Count} agents connected at the end; {noticed}", earlier));
    }

    private List<LedgerEntry> ReadLedger()
    {
        var entries = new List<LedgerEntry>();
        var workRoot = Path.Combine(cluster.Dir, "work") + "/";
        foreach (var line in File.ReadLines(cluster.LedgerPath))
        {
            var fields = line.Split(' ');
            if (fields.Length >= 6 && int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var attempt)
                && double.TryParse(fields[4], NumberStyles.Float, CultureInfo.InvariantCulture, out var epoch))
            {
                var agent = fields[5].StartsWith(workRoot, StringComparison.Ordinal) ? fields[5][workRoot.Length..].Split('/')[0] : "?";
                entries.Add(new LedgerEntry(fields[0], fields[1], attempt, DateTime.UnixEpoch.AddSeconds(epoch), agent));
            }
        }

        return entries;
    }

    private sealed record LedgerEntry(string Run, string Step, int Attempt, DateTime At, string Agent);

    /// <summary>Which agent each attempt was assigned to, from the agents' "Assigned RUN/STEP attempt N" log lines.</summary>
    private Dictionary<(string Run, string Step, int Attempt), string> ReadAssignments()
    {
        var assigned = new Dictionary<(string, string, int), string>();
        foreach (var agent in cluster.Agents)
        {
            foreach (var line in File.ReadLines(agent.Log.Path))
            {
                var at = line.IndexOf("] Assigned ", StringComparison.Ordinal);
                if (at < 0)
                {
                    continue;
                }

                var fields = line[(at + "] Assigned ".Length)..].Split(' ');
                var slash = fields[0].IndexOf('/', StringComparison.Ordinal);
                if (fields.Length >= 3 && slash > 0 && int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var attempt))
                {
                    assigned[(fields[0][..slash], fields[0][(slash + 1)..], attempt)] = agent.Id;
                }
            }
        }

        return assigned;
    }

    /// <summary>
    /// Every attempt that was superseded (requeued or retried) other than by the step's own design is explained by a
    /// fault that may cost an attempt: its agent killed or stopped, or cut off from every scheduler for most of a lease
    /// (lease minus one heartbeat), or Redis killed while it ran. A replica killed and back within that time, a clean Redis
    /// restart or a cut connection must cost nothing: the agent keeps its attempts and its results across them.
    /// </summary>
    private int CheckSupersededAttempts(TrackedRun run, Step step, Dictionary<(string, string, int), string> assigned, ILookup<(string, string), LedgerEntry> ledger, ref int superseded, ref int explained)
    {
        var bad = 0;
        var history = step.History.ToList();
        for (var k = 1; k < step.Attempt; k++)
        {
            var startIndex = history.FindIndex(h => h.Attempt == k && h.ToState == "STEP_STATE_ASSIGNED");
            var endIndex = history.FindIndex(Math.Max(0, startIndex), h => h.Attempt == k && h.ToState is "STEP_STATE_READY" or "STEP_STATE_RETRY_WAIT");
            while (endIndex >= 0 && history[endIndex].Reason.StartsWith("declined by agent", StringComparison.Ordinal))
            {
                // Declined (by the agent, or on its behalf when it never received the assignment): nothing ran and the
                // attempt number was given back, so the next assignment under that number is the attempt.
                startIndex = history.FindIndex(endIndex, h => h.Attempt == k && h.ToState == "STEP_STATE_ASSIGNED");
                endIndex = startIndex < 0 ? -1 : history.FindIndex(startIndex, h => h.Attempt == k && h.ToState is "STEP_STATE_READY" or "STEP_STATE_RETRY_WAIT");
            }

            if (endIndex < 0 || (startIndex >= 0 && endIndex < startIndex))
            {
                continue;
            }

            var end = history[endIndex];
            if (end.Reason.Contains("on purpose", StringComparison.Ordinal))
            {
                continue;
            }

            superseded++;
            var endAt = end.Time.ToDateTime();
            var startAt = startIndex >= 0 ? history[startIndex].Time.ToDateTime() : endAt - TimeSpan.FromSeconds(90);
            var agent = assigned.GetValueOrDefault((run.Id, step.Id, k));
            var from = startAt - TimeSpan.FromSeconds(1);
            var enough = SoakCluster.Lease - SoakCluster.HeartbeatInterval;
            var excuse = chaos.Outages.FirstOrDefault(o => o.From <= endAt && o.To >= from
                && (o.Kind == FaultKinds.RedisKill
                    || ((agent is null || o.Agent == agent) && o.Agent.Length > 0
                        && (o.Kind is FaultKinds.AgentKill or FaultKinds.AgentStop || o.Length >= enough))));
            if (excuse is not null)
            {
                explained++;
                continue;
            }

            var completed = ledger[(run.Id, step.Id)].FirstOrDefault(l => l.Attempt == k);
            var outages = chaos.Outages.Where(o => o.From <= endAt && o.To >= from).Select(o => $"{o.Kind}{(o.Agent.Length > 0 ? " " + o.Agent : "")} {Time(o.From)}-{Time(o.To)} ({Workload.Seconds(o.Length)})").ToList();
            bad += Violate(NoLoss, run, step.Id,
                $"attempt {k} on {agent ?? "an unknown agent"} (assigned {Time(startAt)}) ended {end.ToState.Replace("STEP_STATE_", "", StringComparison.Ordinal)} at {Time(endAt)}: '{Clip(end.Reason)}'" +
                $"{(completed is null ? "" : $"; its process had run to its end at {Time(completed.At)} on {completed.Agent}: a completed result was lost")}" +
                $"; outages meanwhile: {(outages.Count == 0 ? "none" : string.Join("; ", outages))}");
        }

        return bad;
    }

    public const string RetentionDeletes = "finished runs are deleted once their retention has passed";

    /// <summary>Whether the store may have deleted the run by now: it had a retention, the driver saw it end, and that retention has passed since.</summary>
    /// <summary>
    /// Whether the run's retention has passed, counted from its finished_at as the store recorded it: the driver may
    /// learn of the end seconds later (its watch was on a replica that was stopped), and retention does not wait for it.
    /// </summary>
    private static bool DeletedByRetention(TrackedRun run) =>
        run.Plan.Spec.Retention is { } retention && run.Last is { } last && ControlPlaneClient.IsTerminal(last.State)
        && (last.FinishedAt?.ToDateTime() ?? run.TerminalAt) is { } ended
        && DateTime.UtcNow >= ended + retention.ToTimeSpan() - TimeSpan.FromSeconds(5);

    /// <summary>
    /// Waits until the retention of the last run to end has passed (plus a few maintenance passes), then lists the
    /// soak's runs: none may be left. The memory figures taken after this are those after retention.
    /// </summary>
    public async Task CheckRetentionAsync(TimeSpan retention, string soakId)
    {
        var lastEnd = workload.Runs.Select(r => r.TerminalAt ?? DateTime.UtcNow).DefaultIfEmpty(DateTime.UtcNow).Max();
        var wait = lastEnd + retention + TimeSpan.FromSeconds(10) - DateTime.UtcNow;
        if (wait > TimeSpan.Zero)
        {
            Console.WriteLine($"soak: waiting {Workload.Seconds(wait)} for the last run's retention of {Workload.Seconds(retention)} to pass");
            await Task.Delay(wait);
        }

        var request = new ListRunsRequest { PageSize = 100 };
        request.Labels["soak"] = soakId;
        var left = await api.CallAsync(c => c.ListRunsAsync(request));
        foreach (var run in left.Runs)
        {
            Violate(RetentionDeletes, run.Id, "", $"{run.State} run still listed {Workload.Seconds(DateTime.UtcNow - run.FinishedAt?.ToDateTime() ?? TimeSpan.Zero)} after it finished; retention {Workload.Seconds(retention)}");
        }

        Results.Add(new CheckResult(RetentionDeletes, $"{workload.Runs.Count} runs with a retention of {Workload.Seconds(retention)}; {left.Runs.Count} listed once it passed for the last", left.Runs.Count));
    }

    private string RunStateOf(string runId, string stepId)
    {
        var run = workload.Runs.FirstOrDefault(r => r.Id == runId)?.Last;
        var step = run?.Steps.FirstOrDefault(s => s.Id == stepId);
        return step is null ? "" : $"; the store has the step {step.State} at attempt {step.Attempt}";
    }

    private int Violate(string invariant, TrackedRun run, string stepId, string detail) => Violate(invariant, run.Id, stepId, $"[{run.Plan.Kind} #{run.Number}] {detail}");

    private int Violate(string invariant, string runId, string stepId, string detail)
    {
        journal.Violate(invariant, runId, stepId, detail);
        return 1;
    }

    private static string History(Step step)
    {
        var text = new StringBuilder();
        foreach (var h in step.History)
        {
            text.Append(CultureInfo.InvariantCulture, $"{(text.Length > 0 ? " > " : "")}{h.ToState.Replace("STEP_STATE_", "", StringComparison.Ordinal)}#{h.Attempt}");
            if (h.Reason.Length > 0 && h.ToState is "STEP_STATE_READY" or "STEP_STATE_FAILED" or "STEP_STATE_RETRY_WAIT" or "STEP_STATE_CANCELLED")
            {
                text.Append(CultureInfo.InvariantCulture, $" ({Clip(h.Reason)})");
            }
        }

        return text.ToString();
    }

    private static string StepError(Step step) => step.Error.Length > 0 ? $" (error '{Clip(step.Error)}')" : "";

    private static string RunError(Run run) => run.Error.Length > 0 ? $" (run error '{Clip(run.Error)}')" : "";

    private static string Clip(string text) => text.Length > 160 ? text[..160] + "..." : text;

    public static string Time(DateTime? at) => at?.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture) ?? "never";

    private static string Time(DateTime at) => at.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);
}
