using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ControlPlane.Client;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using StackExchange.Redis;

namespace ControlPlane.Bench;

/// <summary>
/// Starts redis-server, the scheduler host and K agent processes, runs the phases and prints one JSON line of figures.
/// Throughput runs from the first submit to the last run's finished_at (the scheduler's clock, same machine).
/// </summary>
internal static class Driver
{
    // Commands that only ever arrive over the network (the baseline's set, plus pub/sub), as opposed to what scripts ran.
    private static readonly HashSet<string> TopLevel = new(StringComparer.Ordinal)
    {
        "evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "multi", "exec", "bzpopmin", "bzpopmax", "xread", "blmove", "brpoplpush",
        "ping", "echo", "client|setname", "client|setinfo", "script|load", "subscribe", "psubscribe", "unsubscribe", "punsubscribe",
    };

    private static readonly TimeSpan PhaseTimeout = TimeSpan.FromMinutes(10);

    // How long a child gets to shut down on SIGTERM before it is killed.
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(15);

    public static async Task<int> RunAsync(BenchOptions options)
    {
        // In process, before any child starts, so nothing else competes for the CPU while it is measured.
        var validation = WorstCaseValidation.Measure();
        Console.WriteLine($"== worst-case validation: {validation["worst_validation_ms"]} ms (median of each worst spec, the largest)");
        var scratch = Directory.CreateTempSubdirectory("cp-bench-");
        await using var redis = options.Redis is null ? new RedisServer() : null;
        if (redis is not null)
        {
            await redis.StartAsync();
        }

        var redisEndpoint = options.Redis ?? redis!.Configuration;
        Console.WriteLine($"== redis {redisEndpoint}, {options.Agents} agents x {options.Slots} slots");
        using var mux = await ConnectionMultiplexer.ConnectAsync($"{redisEndpoint},allowAdmin=true");
        var server = mux.GetServer(redisEndpoint);

        // Children echo their output to stderr as "[scheduler] ..." and "[agent-N] ...".
        await using var scheduler = ObservedProcess.Start(
            "scheduler",
            "dotnet",
            [options.SchedulerPath, "--listen", "127.0.0.1:0", "--redis", redisEndpoint, "--log-level", "Warning"],
            echo: Console.Error);
        var address = await scheduler.WaitForListeningAsync(TimeSpan.FromSeconds(60));

        var agents = new List<ObservedProcess>();
        try
        {
            var benchDll = typeof(Driver).Assembly.Location;
            for (var i = 0; i < options.Agents; i++)
            {
                agents.Add(ObservedProcess.Start(
                    $"agent-{i}",
                    "dotnet",
                    [benchDll, "bench-agent", "--scheduler", address, "--agent-id", $"bench-agent-{i}", "--slots", options.Slots.ToString(CultureInfo.InvariantCulture)],
                    environment: new Dictionary<string, string>
                    {
                        [HandlerStarts.FileVariable] = Path.Combine(scratch.FullName, $"starts-{i}.txt"),
                        ["CP_LOG_LEVEL"] = "Warning",
                    },
                    echo: Console.Error));
            }

            using var client = new ControlPlaneClient(address);
            await WaitForAgentsAsync(client, options.Agents);
            var startsLog = new StartsLog(Enumerable.Range(0, options.Agents).Select(i => Path.Combine(scratch.FullName, $"starts-{i}.txt")).ToList());
            var bench = new Bench(client, server, scheduler, agents, startsLog);

            // Warm-up, not measured: every shape once at a tenth of its size, then again, so connections, the script cache and
            // the JIT's tiered recompilation of the hot paths (several seconds of CPU) are done before the first measured phase.
            for (var round = 0; round < options.WarmupRounds; round++)
            {
                var label = $"warmup-{round + 1}";
                var warm = Enumerable.Range(0, Math.Max(1, options.FanoutRuns / 10)).Select(_ => Specs.FanOut(label, options.FanoutWidth))
                    .Concat(Enumerable.Range(0, Math.Max(1, options.DagRuns / 10)).Select(_ => Specs.ParentWithChildren(label, options.DagChildren)))
                    .Append(Specs.FanOut(label, Math.Max(1, options.WideSteps / 10)))
                    .ToList();
                await bench.ThroughputAsync(label, warm, sampleDispatch: false);
            }

            var fanout = await bench.ThroughputAsync("fanout", Enumerable.Range(0, options.FanoutRuns).Select(_ => Specs.FanOut("fanout", options.FanoutWidth)).ToList(), sampleDispatch: true);
            var dag = await bench.ThroughputAsync("dag", Enumerable.Range(0, options.DagRuns).Select(_ => Specs.ParentWithChildren("dag", options.DagChildren)).ToList(), sampleDispatch: true);
            var wide = await bench.ThroughputAsync("wide", [Specs.FanOut("wide", options.WideSteps)], sampleDispatch: true);
            var seq = await bench.SequentialAsync(options.SeqRuns);

            // Dispatch under load: runs of 10 parallel steps submitted at a steady pace, at 50 % and 90 % of the fan-out rate.
            var at50 = await bench.PacedAsync("paced-50", fanout.StepsPerSecond * 0.5, options.PacedSeconds);
            var at90 = await bench.PacedAsync("paced-90", fanout.StepsPerSecond * 0.9, options.PacedSeconds);

            // Idle dispatch comes from the one-at-a-time runs; burst dispatch also holds the wait behind a backlog of ready steps.
            var burst = fanout.Dispatch.Concat(dag.Dispatch).Concat(wide.Dispatch).ToList();
            var all = new[] { fanout, dag, wide };
            var steps = all.Sum(p => p.Steps);
            var figures = new SortedDictionary<string, double>(StringComparer.Ordinal)
            {
                ["noop_steps_per_s"] = Math.Round(fanout.StepsPerSecond, 1),
                ["dag_steps_per_s"] = Math.Round(dag.StepsPerSecond, 1),
                ["wide_steps_per_s"] = Math.Round(wide.StepsPerSecond, 1),
                ["seq_p50_ms"] = Math.Round(seq.P50, 3),
                ["seq_p99_ms"] = Math.Round(seq.P99, 3),
                ["dispatch_p50_ms"] = Math.Round(Percentiles.Of(at50.Dispatch, 50), 3),
                ["dispatch_p99_ms"] = Math.Round(Percentiles.Of(at50.Dispatch, 99), 3),
                ["dispatch_load50_steps_per_s"] = Math.Round(at50.StepsPerSecond, 1),
                ["dispatch_p50_ms_at_90"] = Math.Round(Percentiles.Of(at90.Dispatch, 50), 3),
                ["dispatch_p99_ms_at_90"] = Math.Round(Percentiles.Of(at90.Dispatch, 99), 3),
                ["dispatch_load90_steps_per_s"] = Math.Round(at90.StepsPerSecond, 1),
                ["idle_dispatch_p50_ms"] = Math.Round(Percentiles.Of(seq.Dispatch, 50), 3),
                ["idle_dispatch_p99_ms"] = Math.Round(Percentiles.Of(seq.Dispatch, 99), 3),
                ["burst_dispatch_p50_ms"] = Math.Round(Percentiles.Of(burst, 50), 3),
                ["burst_dispatch_p99_ms"] = Math.Round(Percentiles.Of(burst, 99), 3),
                ["burst_dispatch_samples"] = burst.Count,
                ["redis_commands_per_step"] = Math.Round(all.Sum(p => p.Commands) / (double)steps, 3),
                ["redis_roundtrips_per_step"] = Math.Round(all.Sum(p => p.TopLevel) / (double)steps, 3),
                ["redis_script_calls_per_step"] = Math.Round(all.Sum(p => p.ScriptCalls) / (double)steps, 3),
                ["seq_redis_commands_per_run"] = Math.Round(seq.CommandsPerRun, 3),
                ["scheduler_cpu_s_per_1000_steps"] = Math.Round(all.Sum(p => p.SchedulerCpu) / steps * 1000, 4),
                ["agents_cpu_s_per_1000_steps"] = Math.Round(all.Sum(p => p.AgentCpu) / steps * 1000, 4),
                ["redis_cpu_s_per_1000_steps"] = Math.Round(all.Sum(p => p.RedisCpu) / steps * 1000, 4),
                ["redis_script_s_per_1000_steps"] = Math.Round(all.Sum(p => p.ScriptMicros) / 1e6 / steps * 1000, 4),
                ["scheduler_peak_rss_mib"] = Math.Round(ProcessProbe.PeakRssMiB(scheduler.Id), 1),
                ["agent_peak_rss_mib"] = Math.Round(ProcessProbe.PeakRssMiB(agents[0].Id), 1),
                ["agents"] = options.Agents,
                ["slots_per_agent"] = options.Slots,
            };
            foreach (var (name, value) in validation)
            {
                figures[name] = value;
            }

            var json = JsonSerializer.Serialize(figures);
            if (options.JsonOut is { } path)
            {
                await File.WriteAllTextAsync(path, json + "\n");
            }

            Console.WriteLine(json);
            return 0;
        }
        finally
        {
            // Agents first, so none of them sees the scheduler vanish and starts reconnecting; each drains on SIGTERM.
            foreach (var agent in agents)
            {
                await agent.StopAsync(StopGrace);
                await agent.DisposeAsync();
            }

            await scheduler.StopAsync(StopGrace);

            scratch.Delete(recursive: true);
        }
    }

    private static async Task WaitForAgentsAsync(ControlPlaneClient client, int count)
    {
        var deadline = Stopwatch.StartNew();
        while ((await client.ListAgentsAsync()).Count(a => a.AgentId.StartsWith("bench-agent-", StringComparison.Ordinal)) < count)
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException($"only some of the {count} agents connected within 60 s; see the [agent-N] lines above");
            }

            await Task.Delay(50);
        }
    }

    internal sealed record PhaseResult(int Steps, double StepsPerSecond, long Commands, long TopLevel, long ScriptCalls, double SchedulerCpu, double AgentCpu, double RedisCpu, long ScriptMicros, List<double> Dispatch);

    internal sealed record PacedResult(double StepsPerSecond, List<double> Dispatch);

    internal sealed record SequentialResult(double P50, double P99, double CommandsPerRun, List<double> Dispatch);

    private sealed class Bench(ControlPlaneClient client, IServer server, ObservedProcess scheduler, IReadOnlyList<ObservedProcess> agents, StartsLog startsLog)
    {
        public async Task<PhaseResult> ThroughputAsync(string phase, IReadOnlyList<RunSpec> specs, bool sampleDispatch)
        {
            var steps = specs.Sum(s => s.Steps.Count);
            await server.ConfigResetStatisticsAsync();
            var cpu0 = ProcessProbe.CpuSeconds(scheduler.Id);
            var agentCpu0 = agents.Sum(a => ProcessProbe.CpuSeconds(a.Id));
            var redisCpu0 = await RedisCpuSecondsAsync();
            var startMicros = HandlerStarts.NowMicros();

            // Submit from 8 concurrent callers, as a busy client would; all runs go in as fast as the scheduler takes them.
            var runIds = new string[specs.Count];
            var next = -1;
            async Task Submitter()
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < specs.Count)
                {
                    runIds[i] = (await client.SubmitRunAsync(specs[i])).Run.Id;
                }
            }

            await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Submitter()));
            // Counters are read once the work is done and before the runs are listed: listing scans every run in
            // Redis, which is the driver's cost, not the phase's.
            var (cpu, agentCpu, redisCpu, commands, topLevel, scriptCalls, scriptMicros) = await WaitUntilIdleAsync(phase, runIds.ToHashSet(), steps, async () =>
            {
                var stats = await CommandStatsAsync();
                if (Environment.GetEnvironmentVariable("BENCH_COMMANDS") == "1")
                {
                    Console.WriteLine($"== {phase} commandstats:\n" + await server.InfoRawAsync("commandstats"));
                }

                return (ProcessProbe.CpuSeconds(scheduler.Id) - cpu0, agents.Sum(a => ProcessProbe.CpuSeconds(a.Id)) - agentCpu0, await RedisCpuSecondsAsync() - redisCpu0,
                    stats.Commands, stats.TopLevel, stats.ScriptCalls, stats.ScriptMicros);
            });

            // Every run must have succeeded; the last finished_at ends the phase.
            var lastFinish = 0L;
            var listed = 0;
            var request = new ListRunsRequest { PageSize = 1000 };
            request.Labels["bench"] = phase;
            do
            {
                var page = await client.ListRunsAsync(request);
                foreach (var run in page.Runs)
                {
                    if (run.State != RunState.Succeeded)
                    {
                        throw new InvalidOperationException($"{phase}: run {run.Id} ended {run.State}: {run.Error}");
                    }

                    listed++;
                    lastFinish = Math.Max(lastFinish, Micros(run.FinishedAt));
                }

                request.PageToken = page.NextPageToken;
            }
            while (!string.IsNullOrEmpty(request.PageToken));
            if (listed != specs.Count)
            {
                throw new InvalidOperationException($"{phase}: ListRuns returned {listed} runs, submitted {specs.Count}");
            }

            var seconds = (lastFinish - startMicros) / 1e6;
            var dispatch = sampleDispatch ? await DispatchLatencyAsync(runIds.Take(50).ToList()) : [];
            var result = new PhaseResult(steps, steps / seconds, commands, topLevel, scriptCalls, cpu, agentCpu, redisCpu, scriptMicros, dispatch);
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"== {phase}: {specs.Count} runs, {steps} steps in {seconds:F2} s = {result.StepsPerSecond:F0} steps/s; {commands / (double)steps:F2} Redis commands/step, {topLevel / (double)steps:F3} top-level/step, {scriptCalls / (double)steps:F3} script calls/step; CPU-s per 1,000 steps: scheduler {cpu / steps * 1000:F3}, agents {agentCpu / steps * 1000:F3}, redis {redisCpu / steps * 1000:F3} (scripts {scriptMicros / 1000.0 / steps:F3}); dispatch p50 {Percentiles.Of(dispatch, 50):F2} ms p99 {Percentiles.Of(dispatch, 99):F2} ms ({dispatch.Count} samples)"));
            return result;
        }

        /// <summary>
        /// Submits runs of 10 parallel no-op steps at a steady pace of <paramref name="stepsPerSecond"/> for
        /// <paramref name="seconds"/>, then measures READY -> handler start for every step.
        /// </summary>
        public async Task<PacedResult> PacedAsync(string phase, double stepsPerSecond, int seconds)
        {
            const int width = 10;
            var runsPerSecond = stepsPerSecond / width;
            var count = Math.Max(1, (int)(runsPerSecond * seconds));
            var interval = TimeSpan.FromSeconds(1 / runsPerSecond);
            var runIds = new string[count];
            var pending = new List<Task>(count);
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < count; i++)
            {
                // Sleep until this run's slot; a late loop catches up at once instead of drifting.
                var due = interval * i;
                var wait = due - clock.Elapsed;
                if (wait > TimeSpan.FromMilliseconds(1))
                {
                    await Task.Delay(wait);
                }

                var index = i;
                pending.Add(Task.Run(async () => runIds[index] = (await client.SubmitRunAsync(Specs.FanOut(phase, width))).Run.Id));
            }

            await Task.WhenAll(pending);
            var offered = count * width / clock.Elapsed.TotalSeconds;
            await WaitUntilIdleAsync(phase, runIds.ToHashSet(), count * width, () => Task.FromResult(0));
            var dispatch = await DispatchLatencyAsync(runIds);
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"== {phase}: {count} runs x {width} steps offered at {offered:F0} steps/s; dispatch (READY -> handler start) p50 {Percentiles.Of(dispatch, 50):F2} ms p99 {Percentiles.Of(dispatch, 99):F2} ms ({dispatch.Count} samples)"));
            return new PacedResult(offered, dispatch);
        }

        public async Task<SequentialResult> SequentialAsync(int count)
        {
            var latencies = new List<double>(count);
            var sent = new List<(string Run, long Sent, long Done)>(count);
            var measured = new List<string>(count);
            for (var i = -20; i < count; i++)
            {
                // The first 20 are warm-up; statistics are reset once they are done.
                if (i == 0)
                {
                    await server.ConfigResetStatisticsAsync();
                }

                var spec = Specs.FanOut("seq", 1);
                var sentMicros = HandlerStarts.NowMicros();
                var clock = Stopwatch.StartNew();
                var runId = (await client.SubmitRunAsync(spec)).Run.Id;
                RunState? final = null;
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await foreach (var e in client.WatchRunAsync(runId, cancellationToken: timeout.Token))
                {
                    if (e.RunStateChanged is { } changed && changed.ToState is RunState.Succeeded or RunState.Failed or RunState.Cancelled)
                    {
                        final = changed.ToState;
                    }
                }

                var elapsed = clock.Elapsed.TotalMilliseconds;
                if (final != RunState.Succeeded)
                {
                    throw new InvalidOperationException($"seq: run {runId} ended {final?.ToString() ?? "without a final state"}");
                }

                if (i >= 0)
                {
                    latencies.Add(elapsed);
                    measured.Add(runId);
                    sent.Add((runId, sentMicros, sentMicros + (long)(elapsed * 1000)));
                }
            }

            var (commands, _, _, _) = await CommandStatsAsync();
            var dispatch = await DispatchLatencyAsync(measured);

            // Where the time goes: submit sent -> handler start, and handler start -> final event received (one clock).
            var before = sent.Select(x => (startsLog.Starts[(x.Run, "w0")] - x.Sent) / 1000.0).ToList();
            var after = sent.Select(x => (x.Done - startsLog.Starts[(x.Run, "w0")]) / 1000.0).ToList();
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"== seq split: submit sent -> handler start p50 {Percentiles.Of(before, 50):F2} ms p99 {Percentiles.Of(before, 99):F2} ms; handler start -> final event p50 {Percentiles.Of(after, 50):F2} ms p99 {Percentiles.Of(after, 99):F2} ms"));
            var result = new SequentialResult(Percentiles.Of(latencies, 50), Percentiles.Of(latencies, 99), commands / (double)count, dispatch);
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"== seq: {count} one-step runs one at a time, submit -> final event: p50 {result.P50:F2} ms, p99 {result.P99:F2} ms, mean {latencies.Average():F2} ms; {result.CommandsPerRun:F1} Redis commands/run; dispatch (READY -> handler start, nothing queued) p50 {Percentiles.Of(dispatch, 50):F2} ms p99 {Percentiles.Of(dispatch, 99):F2} ms"));
            return result;
        }

        // Watches the agents' start files first (no Redis traffic); then waits until Redis has run no script for 100 ms
        // and reads the counters; only then asks the scheduler whether any run of the phase is unfinished, and if one
        // is, waits and reads the counters again.
        private async Task<T> WaitUntilIdleAsync<T>(string phase, IReadOnlySet<string> runIds, int steps, Func<Task<T>> readCounters)
        {
            var clock = Stopwatch.StartNew();
            while (true)
            {
                startsLog.Refresh();
                if (startsLog.CountStarted(runIds) >= steps)
                {
                    break;
                }

                ThrowIfLate();
                await Task.Delay(20);
            }

            while (true)
            {
                var quiet = 0;
                var calls = (await CommandStatsAsync()).ScriptCalls;
                while (quiet < 5)
                {
                    await Task.Delay(20);
                    var now = (await CommandStatsAsync()).ScriptCalls;
                    quiet = now == calls ? quiet + 1 : 0;
                    calls = now;
                    ThrowIfLate();
                }

                var counters = await readCounters();
                if (!await AnyAsync(RunState.Running) && !await AnyAsync(RunState.Pending))
                {
                    return counters;
                }
            }

            void ThrowIfLate()
            {
                if (clock.Elapsed > PhaseTimeout)
                {
                    throw new TimeoutException($"{phase}: runs still not finished after {PhaseTimeout.TotalMinutes} min; see the [scheduler] and [agent-N] lines above");
                }
            }

            async Task<bool> AnyAsync(RunState state)
            {
                var request = new ListRunsRequest { State = state, PageSize = 1 };
                request.Labels["bench"] = phase;
                return (await client.ListRunsAsync(request)).Runs.Count > 0;
            }
        }

        /// <summary>Step READY (from the step's history) -> handler start (recorded by the agent), for the steps of a sample of runs.</summary>
        private async Task<List<double>> DispatchLatencyAsync(IReadOnlyList<string> runIds)
        {
            var ready = new List<(string Run, string Step, long ReadyMicros)>();
            foreach (var runId in runIds)
            {
                var run = await client.GetRunAsync(runId);
                foreach (var step in run.Steps)
                {
                    var transition = step.History.LastOrDefault(h => h.ToState.Contains("READY", StringComparison.OrdinalIgnoreCase))
                        ?? throw new InvalidOperationException($"run {runId} step {step.Id}: its history has no transition to READY");
                    ready.Add((runId, step.Id, Micros(transition.Time)));
                }
            }

            // The agents write start times off the handler's path: give the last lines a moment to reach the files.
            var clock = Stopwatch.StartNew();
            startsLog.Refresh();
            while (ready.Any(r => !startsLog.Starts.ContainsKey((r.Run, r.Step))))
            {
                if (clock.Elapsed > TimeSpan.FromSeconds(10))
                {
                    var missing = ready.First(r => !startsLog.Starts.ContainsKey((r.Run, r.Step)));
                    throw new InvalidOperationException($"run {missing.Run} step {missing.Step} succeeded but no agent recorded its handler start");
                }

                await Task.Delay(10);
                startsLog.Refresh();
            }

            return ready.Select(r => (startsLog.Starts[(r.Run, r.Step)] - r.ReadyMicros) / 1000.0).ToList();
        }

        // used_cpu_sys + used_cpu_user of the redis-server process (main thread and the rest), in seconds.
        private async Task<double> RedisCpuSecondsAsync()
        {
            var raw = await server.InfoRawAsync("cpu") ?? "";
            var total = 0.0;
            foreach (var line in raw.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (line.StartsWith("used_cpu_sys:", StringComparison.Ordinal) || line.StartsWith("used_cpu_user:", StringComparison.Ordinal))
                {
                    total += double.Parse(line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..], CultureInfo.InvariantCulture);
                }
            }

            return total;
        }

        private async Task<(long Commands, long TopLevel, long ScriptCalls, long ScriptMicros)> CommandStatsAsync()
        {
            var raw = await server.InfoRawAsync("commandstats") ?? "";
            long commands = 0, topLevel = 0, scripts = 0, scriptMicros = 0;
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

                var calls = long.Parse(line.Split(',')[0].Split('=')[1], CultureInfo.InvariantCulture);
                commands += calls;
                if (TopLevel.Contains(command))
                {
                    topLevel += calls;
                }

                if (command.StartsWith("eval", StringComparison.Ordinal) || command == "fcall")
                {
                    scripts += calls;
                    scriptMicros += long.Parse(line.Split(',')[1].Split('=')[1], CultureInfo.InvariantCulture);
                }
            }

            return (commands, topLevel, scripts, scriptMicros);
        }
    }

    private static long Micros(Google.Protobuf.WellKnownTypes.Timestamp? time) =>
        time is null ? 0 : (time.Seconds * 1_000_000) + (time.Nanos / 1000);
}
