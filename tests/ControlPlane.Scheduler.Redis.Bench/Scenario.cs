using System.Diagnostics;
using System.Globalization;
using ControlPlane.V1;
using StackExchange.Redis;

namespace ControlPlane.Scheduler.Redis.Bench;

/// <summary>
/// One measured workload: submit every run, then several claimers claim in batches and report Started +
/// Completed for each batch in one call, until every step is done. Redis commands come from the server's
/// INFO commandstats (which counts commands run inside Lua too), round trips from the store.
/// </summary>
internal sealed class Scenario(string name, string shape, string config, IServer server, int claimers, IReadOnlyList<RunSpec> specs)
{
    private const int ClaimBatch = 128;

    /// <summary>Microseconds Redis spent in scripts, from the last commandstats read.</summary>
    private long LastScriptMicros { get; set; }

    public async Task RunAsync()
    {
        var ns = name.Replace(' ', '-');
        await using var store = await RedisRunStore.ConnectAsync(config, ns, new RunStoreOptions(), TimeProvider.System);
        var total = specs.Sum(s => s.Steps.Count);
        var wake = new SemaphoreSlim(0);
        await using var subscription = await store.SubscribeAsync(s =>
        {
            if (s is ReadyWork)
            {
                wake.Release();
            }
        });
        for (var a = 0; a < claimers; a++)
        {
            await store.ConnectAgentAsync(new AgentRegistration($"agent-{a}", "bench", ["shell"], [], new Dictionary<string, string>(), 1024, [], []));
        }

        // Submit phase.
        await server.ConfigResetStatisticsAsync();
        var trips0 = store.RoundTrips;
        var clock = Stopwatch.StartNew();
        var runIds = new List<string>();
        foreach (var chunk in specs.Chunk(8))
        {
            var results = await Task.WhenAll(chunk.Select(s => store.SubmitRunAsync(s, null)));
            runIds.AddRange(results.Select(r => r.Run.Id));
        }

        var submitTime = clock.Elapsed;
        var submitCommands = await CommandStatsAsync();
        var submitTrips = store.RoundTrips - trips0;

        // Execution phase: claim -> Started + Completed.
        await server.ConfigResetStatisticsAsync();
        trips0 = store.RoundTrips;
        var done = 0;
        var claims = 0L;
        var reports = 0L;
        clock.Restart();

        async Task Claimer(string agentId)
        {
            while (Volatile.Read(ref done) < total)
            {
                var batch = await store.ClaimAsync(new ClaimRequest(agentId, ClaimBatch));
                Interlocked.Increment(ref claims);
                if (batch.Count == 0)
                {
                    // Wait for a wake-up; the short timeout only covers a wake-up that raced this claim.
                    await wake.WaitAsync(TimeSpan.FromMilliseconds(20));
                    continue;
                }

                var list = new List<AttemptReport>(batch.Count * 2);
                foreach (var a in batch)
                {
                    var attempt = new AttemptRef(a.RunId, a.StepId, a.FencingToken);
                    list.Add(new AttemptReport(attempt, new ConnectRequest { StepStarted = new StepStarted { FencingToken = a.FencingToken } }));
                    list.Add(new AttemptReport(attempt, new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = a.FencingToken } }));
                }

                var outcomes = await store.ReportAsync(list);
                Interlocked.Increment(ref reports);
                if (outcomes.Any(o => o != ReportOutcome.Accepted))
                {
                    throw new InvalidOperationException("a report was refused");
                }

                Interlocked.Add(ref done, batch.Count);
                wake.Release(claimers);
            }

            wake.Release(claimers);
        }

        await Task.WhenAll(Enumerable.Range(0, claimers).Select(a => Task.Run(() => Claimer($"agent-{a}"))));
        var runTime = clock.Elapsed;
        var runCommands = await CommandStatsAsync();
        var runTrips = store.RoundTrips - trips0;
        var scriptTime = TimeSpan.FromMicroseconds(LastScriptMicros);

        // Every run succeeded and every counter is back to zero.
        foreach (var id in runIds)
        {
            var run = await store.GetRunAsync(id);
            if (run?.State != RunState.Succeeded)
            {
                throw new InvalidOperationException($"run {id} ended {run?.State}");
            }
        }

        var stats = await store.GetStatsAsync();
        var leaks = stats.Slots.Where(s => s.Used != 0).Select(s => $"{s.Kind}:{s.Name}={s.Used}").ToList();

        var allCommands = submitCommands.Values.Sum() + runCommands.Values.Sum();
        Console.WriteLine($"== {name}: {shape}, {total} steps");
        Console.WriteLine($"   submit   {submitTime.TotalSeconds,7:F2} s   {submitTrips / (double)total,6:F3} round trips/step   {submitCommands.Values.Sum() / (double)total,6:F2} commands/step");
        Console.WriteLine($"   execute  {runTime.TotalSeconds,7:F2} s   {runTrips / (double)total,6:F3} round trips/step   {runCommands.Values.Sum() / (double)total,6:F2} commands/step   ({claims} claim calls, {reports} report calls, {scriptTime.TotalSeconds:F2} s inside Redis scripts)");
        Console.WriteLine($"   total    {(submitTime + runTime).TotalSeconds,7:F2} s   {(submitTrips + runTrips) / (double)total,6:F3} round trips/step   {allCommands / (double)total,6:F2} commands/step   {total / (submitTime + runTime).TotalSeconds,9:F0} steps/s (submit -> claim -> complete)");
        Console.WriteLine($"   execute commands/step by command: {string.Join(", ", runCommands.OrderByDescending(p => p.Value).Select(p => $"{p.Key} {p.Value / (double)total:F2}"))}");
        Console.WriteLine($"   submit commands/step by command:  {string.Join(", ", submitCommands.OrderByDescending(p => p.Value).Select(p => $"{p.Key} {p.Value / (double)total:F2}"))}");
        Console.WriteLine($"   every run SUCCEEDED; slot counters left non-zero: {(leaks.Count == 0 ? "none" : string.Join(", ", leaks))}");
        Console.WriteLine();
    }

    /// <summary>Calls per command since the last CONFIG RESETSTAT, without the INFO/CONFIG calls of the benchmark itself.</summary>
    private async Task<Dictionary<string, long>> CommandStatsAsync()
    {
        var raw = await server.InfoRawAsync("commandstats") ?? "";
        if (Environment.GetEnvironmentVariable("BENCH_RAW_STATS") == "1")
        {
            Console.WriteLine(raw);
        }

        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in raw.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!line.StartsWith("cmdstat_", StringComparison.Ordinal))
            {
                continue;
            }

            var command = line["cmdstat_".Length..line.IndexOf(':', StringComparison.Ordinal)];
            if (command is "info" or "config")
            {
                continue;
            }

            var calls = line.Split(',')[0].Split('=')[1];
            result[command] = long.Parse(calls, CultureInfo.InvariantCulture);
            if (command == "evalsha")
            {
                LastScriptMicros = long.Parse(line.Split(',')[1].Split('=')[1], CultureInfo.InvariantCulture);
            }
        }

        return result;
    }
}
