using System.Diagnostics;
using System.Globalization;
using ControlPlane.V1;
using StackExchange.Redis;

namespace ControlPlane.Soak;

/// <summary>
/// The soak from start to verdict: starts the cluster, runs the mix and the faults for the given minutes, drains, checks
/// the invariants, prints the summary. Exit code 0 when every invariant holds, 1 otherwise. The soak's directory (the
/// process logs, soak.log, the ledger) is printed at the end and kept on failure or with --keep.
/// </summary>
internal static class Driver
{
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromMinutes(3);

    public static async Task<int> RunAsync(SoakOptions options)
    {
        var dir = Directory.CreateTempSubdirectory("cp-soak-").FullName;
        var soakId = Guid.NewGuid().ToString("N")[..10];
        var duration = TimeSpan.FromMinutes(options.Minutes);
        using var journal = new Journal(Path.Combine(dir, "soak.log"));
        Console.WriteLine($"soak: seed {options.Seed}, {options.Minutes.ToString(CultureInfo.InvariantCulture)} min, faults {(options.Faults.Count == 0 ? "none" : string.Join(",", FaultKinds.All.Where(options.Faults.Contains)))}, dir {dir}");
        journal.Info($"soak {soakId}: seed {options.Seed}, {options.Minutes} min");
        var ok = false;
        try
        {
            ok = await SoakAsync(options, dir, soakId, duration, journal);
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException or IOException or Grpc.Core.RpcException or RedisException)
        {
            journal.Info($"soak aborted: {ex}");
            Console.WriteLine($"soak: ABORTED: {ex.GetType().Name}: {ex.Message.Split('\n')[0]}");
        }

        if (ok && !options.Keep)
        {
            try
            {
                Directory.Delete(dir, recursive: true);
                Console.WriteLine($"soak: logs were in {dir} (deleted; --keep keeps them)");
            }
            catch (IOException)
            {
                Console.WriteLine($"soak: logs in {dir}");
            }
        }
        else
        {
            Console.WriteLine($"soak: logs kept in {dir} (soak.log: the driver's journal; logs/: each process; ledger: every step that ran to its end)");
        }

        return ok ? 0 : 1;
    }

    private static async Task<bool> SoakAsync(SoakOptions options, string dir, string soakId, TimeSpan duration, Journal journal)
    {
        var clock = Stopwatch.StartNew();
        await using var cluster = await SoakCluster.StartAsync(dir, soakId, journal);
        await using var mux = await ConnectionMultiplexer.ConnectAsync($"{cluster.Redis.Configuration},abortConnect=false,allowAdmin=true,connectTimeout=2000,syncTimeout=5000");
        using var api = new Api(cluster.Replicas.Select(r => r.Address));
        await api.CallAsync(async c => { await c.SetLimitAsync(LimitKind.Queue, Pipelines.BatchQueue, Pipelines.BatchQueueCap); return true; });
        await api.CallAsync(async c => { await c.SetLimitAsync(LimitKind.ConcurrencyKey, Pipelines.GpuKey, Pipelines.GpuKeyCap); return true; });
        Console.WriteLine($"soak: started in {Workload.Seconds(clock.Elapsed)}: redis {cluster.Redis.Configuration}, {string.Join(", ", cluster.Replicas.Select(r => $"{r.Name} :{r.Port}"))}, " +
            $"{string.Join(", ", cluster.Agents.Select(a => $"{a.Id} -> {a.Target}"))}; lease {Workload.Seconds(SoakCluster.Lease)}");

        var processes = new StepProcesses(soakId, Path.Combine(dir, "work"), journal);
        using var stopScan = new CancellationTokenSource();
        var scan = Task.Run(() => processes.WatchAsync(stopScan.Token));
        var workload = new Workload(api, new Pipelines(soakId, options.Retention), journal, options.Seed);
        var chaos = new Chaos(cluster, processes, journal, options.Seed, options.Faults, duration);

        var loadClock = Stopwatch.StartNew();
        using var stopLoad = new CancellationTokenSource(duration);
        var submit = Task.Run(() => workload.SubmitAsync(stopLoad.Token));
        var faults = Task.Run(() => chaos.RunAsync(stopLoad.Token));
        var progress = Task.Run(() => ProgressAsync(workload, journal, loadClock, stopLoad.Token));

        // Warmed up: connections, JIT and the script cache are settled, every pipeline kind has likely run once.
        var warmupAt = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(30).Ticks, duration.Ticks / 4));
        MemorySnapshot? warm = null;
        if (warmupAt < duration)
        {
            await Task.WhenAny(Task.Delay(warmupAt), submit);
            warm = await MemorySnapshot.TakeAsync(cluster, mux);
            journal.Info($"memory once warmed up: {warm}");
        }

        await submit;
        await faults;
        await progress;
        var loadTime = loadClock.Elapsed;
        var submitted = workload.Runs.Count;
        Console.WriteLine($"soak: load and faults over after {Workload.Seconds(loadClock.Elapsed)}: {submitted} runs submitted, {journal.Faults.Count} faults; draining");
        var drainClock = Stopwatch.StartNew();
        var drained = await workload.DrainAsync(DrainTimeout);
        var drainTime = drainClock.Elapsed;
        journal.Info(drained ? $"every run terminal after a drain of {Workload.Seconds(drainClock.Elapsed)}" : $"runs still not terminal after {Workload.Seconds(DrainTimeout)}");

        var invariants = new Invariants(api, cluster, mux.GetDatabase(), journal, workload, chaos, processes);
        await invariants.CheckAsync();
        await stopScan.CancelAsync();
        await scan;

        if (options.Retention is { } retention)
        {
            await invariants.CheckRetentionAsync(retention, soakId);
        }

        var end = await MemorySnapshot.TakeAsync(cluster, mux);
        journal.Info($"memory at the end: {end}");
        var memory = MemorySnapshot.Compare(warm, end, options.CheckMemory);
        if (options.CheckMemory && memory.Violations.Count > 0)
        {
            foreach (var violation in memory.Violations)
            {
                journal.Violate("memory within 10 % of its warmed-up value", "", "", violation);
            }
        }

        PrintSummary(options, workload, journal, invariants, memory, loadTime, drainTime, api);
        await cluster.StopAsync();
        return journal.Violations.Count == 0;
    }

    private static async Task ProgressAsync(Workload workload, Journal journal, Stopwatch clock, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(30), stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var runs = workload.Runs;
            Console.WriteLine($"soak: {Workload.Seconds(clock.Elapsed)}: {runs.Count} runs submitted, {runs.Count(r => r.TerminalAt is not null)} ended, {journal.Faults.Count} faults, {journal.Violations.Count} violations so far");
        }
    }

    private static void PrintSummary(SoakOptions options, Workload workload, Journal journal, Invariants invariants, MemoryComparison memory, TimeSpan load, TimeSpan drain, Api api)
    {
        var runs = workload.Runs;
        var faults = journal.Faults;
        var violations = journal.Violations;
        Console.WriteLine();
        Console.WriteLine($"== soak summary (seed {options.Seed})");
        Console.WriteLine($"minutes:  {(load.TotalMinutes).ToString("0.00", CultureInfo.InvariantCulture)} of load and faults, then a drain of {Workload.Seconds(drain)}");
        Console.WriteLine($"runs:     {runs.Count} submitted ({string.Join(", ", Pipelines.Mix.Select(m => $"{m.Kind} {runs.Count(r => r.Plan.Kind == m.Kind)}"))}); {workload.SubmitFailures} submits failed; {api.Failovers} calls moved to the other replica");
        Console.WriteLine($"steps:    {invariants.Figures.FirstOrDefault() ?? "-"}");
        Console.WriteLine($"faults:   {faults.Count} ({string.Join(", ", FaultKinds.All.Select(k => $"{k} {faults.Count(f => f.Kind == k)}"))})");
        Console.WriteLine($"memory:   {memory.Text}");
        Console.WriteLine("invariants:");
        foreach (var result in invariants.Results)
        {
            Console.WriteLine($"  {(result.Violations == 0 ? "PASS" : "FAIL")}  {result.Name}: {result.Figures}{(result.Violations == 0 ? "" : $"; {result.Violations} violation(s)")}");
        }

        if (options.CheckMemory)
        {
            Console.WriteLine($"  {(memory.Violations.Count == 0 ? "PASS" : "FAIL")}  memory within 10 % of its warmed-up value");
        }
        else
        {
            Console.WriteLine("  ----  memory within 10 % of its warmed-up value: not checked (--check-memory)");
        }

        if (violations.Count == 0)
        {
            Console.WriteLine("soak: every invariant holds");
            return;
        }

        Console.WriteLine($"violations ({violations.Count}):");
        var byId = runs.Where(r => r.Id.Length > 0).ToDictionary(r => r.Id, StringComparer.Ordinal);
        foreach (var v in violations)
        {
            Console.WriteLine($"  [{v.Invariant}] run {(v.RunId.Length > 0 ? v.RunId : "-")} step {(v.StepId.Length > 0 ? v.StepId : "-")}: {v.Detail}");
            if (byId.TryGetValue(v.RunId, out var run))
            {
                // A fault that began shortly before the run can still be in effect (a SIGSTOP lasts past a lease).
                var lookBack = SoakCluster.Lease * 2;
                var during = journal.FaultsBetween(run.SubmittedAt - lookBack, run.TerminalAt ?? DateTime.UtcNow);
                Console.WriteLine($"      run submitted {Invariants.Time(run.SubmittedAt)}, ended {Invariants.Time(run.TerminalAt)}; faults from {Workload.Seconds(lookBack)} before it until its end: {(during.Count == 0 ? "none" : string.Join("; ", during))}");
            }
        }

        Console.WriteLine($"soak: {violations.Count} violation(s) of {violations.Select(v => v.Invariant).Distinct(StringComparer.Ordinal).Count()} invariant(s)");
    }
}
