using System.Globalization;
using System.Text;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using CsCheck;
using Google.Protobuf;
using Xunit;
using Xunit.Abstractions;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>
/// The run engine exists twice, in C# (the embedded store) and in Lua (the Redis store). Random sequences of operations
/// go to both with one manual clock; after each operation the runs, their events and the counters must be equal.
/// CsCheck shrinks a failing sequence to a short one and prints it.
/// </summary>
public sealed class StoreDifferentialTests(RedisServerFixture redis, ITestOutputHelper output) : IClassFixture<RedisServerFixture>
{
    private static readonly string[] Agents = ["agent-1", "agent-2"];

    // A palette of runs covering chains, fan-out, gates, failure hooks, budgets, caps, retries and queues.
    private static readonly Func<RunSpec>[] Palette =
    [
        () => Run(Shell("a"), Shell("b", "a"), Shell("c", "b")),
        () => Run(Shell("root"), Shell("x", "root"), Shell("y", "root"), Shell("z", "root"), Shell("join", "x", "y", "z")),
        () => Run(Shell("build"), Gate("approve", "build"), Shell("ship", "approve")),
        () => Run(Shell("work").With(s => s.Retry = new RetryPolicy { MaxAttempts = 2 }), Shell("hook", "work").With(s => s.RunIf = RunIf.OnFailure), Shell("always", "work").With(s => s.RunIf = RunIf.Always)),
        () => Run(Shell("p").With(s => s.Estimate["tokens"] = 40), Shell("q").With(s => s.Estimate["tokens"] = 40), Shell("r", "p", "q").With(s => s.Estimate["tokens"] = 40)).With(r => r.Budget["tokens"] = 100),
        () => Run(Shell("s1"), Shell("s2"), Shell("s3").With(s => s.Queue = "gpu")).With(r => r.Concurrency = 1),
    ];

    /// <remarks>
    /// To debug a failure, set CP_DIFF_OPS to the sequence it printed ("(3,123,598) (0,339,624) ..."): that sequence is
    /// replayed alone, with each operation written to the test output.
    /// </remarks>
    [Fact]
    public async Task RandomOperations_BothStores_StayEqual()
    {
        var replay = Environment.GetEnvironmentVariable("CP_DIFF_OPS");
        if (!string.IsNullOrWhiteSpace(replay))
        {
            var given = System.Text.RegularExpressions.Regex.Matches(replay, @"\((\d+),(\d+),(\d+)\)")
                .Select(m => (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture)))
                .ToArray();
            await using var replayed = await StorePair.CreateAsync(redis.Configuration, "replay", output.WriteLine);
            await replayed.RunAsync(given);
            return;
        }

        var op = Gen.Select(Gen.Int[0, 19], Gen.Int[0, 1000], Gen.Int[0, 1000]);
        var sequences = op.Array[1, 60];
        var iteration = 0;
        await sequences.SampleAsync(
            async ops =>
            {
                var ns = "diff" + Interlocked.Increment(ref iteration).ToString(CultureInfo.InvariantCulture);
                await using var pair = await StorePair.CreateAsync(redis.Configuration, ns);
                await pair.RunAsync(ops);
            },
            writeLine: output.WriteLine,
            iter: 150,
            threads: 1,
            print: ops => string.Join(" ", ops.Select(o => $"({o.Item1},{o.Item2},{o.Item3})")));
    }

    /// <summary>Both stores, one clock, and the bookkeeping that names the same run and attempt in each.</summary>
    private sealed class StorePair : IAsyncDisposable
    {
        private readonly ManualTimeProvider _time = new();
        private readonly List<(string Embedded, string Redis)> _runs = [];

        // Attempts the agents hold: the same step in both stores, each with its own token.
        private readonly List<(int Run, string Step, string Agent, long Embedded, long Redis)> _held = [];

        // Each agent's current session in each store, and the one before it.
        private readonly Dictionary<string, (string Embedded, string Redis)> _sessions = new(StringComparer.Ordinal);
        private readonly Dictionary<string, (string Embedded, string Redis)> _oldSessions = new(StringComparer.Ordinal);

        // Every claim id used so far: a claim may repeat one, as the scheduler does after a lost reply.
        private readonly List<string> _claimIds = [];
        private IRunStore _embedded = null!;
        private IRunStore _redis = null!;

        private Action<string>? _trace;

        public static async Task<StorePair> CreateAsync(string configuration, string ns, Action<string>? trace = null)
        {
            var pair = new StorePair { _trace = trace };
            // One id sequence per store, the same in both, so equal deadlines break ties alike.
            RunStoreOptions Options()
            {
                var next = 0;
                return new RunStoreOptions
                {
                    LeaseDuration = TimeSpan.FromSeconds(30),
                    LeaseExpiryAttempts = 2,
                    RunIdGenerator = _ => $"run{Interlocked.Increment(ref next):D6}",
                };
            }

            pair._embedded = new EmbeddedRunStore(Options(), pair._time);
            pair._redis = await RedisRunStore.ConnectAsync(configuration, ns, Options(), pair._time);
            return pair;
        }

        public async ValueTask DisposeAsync()
        {
            await _embedded.DisposeAsync();
            await _redis.DisposeAsync();
        }

        public async Task RunAsync((int Kind, int A, int B)[] ops)
        {
            for (var i = 0; i < ops.Length; i++)
            {
                var description = await ApplyAsync(ops[i]);
                _trace?.Invoke($"op {i}: {description}");
                await CompareAsync($"after op {i} {description}");
            }
        }

        private async Task<string> ApplyAsync((int Kind, int A, int B) op)
        {
            var (kind, a, b) = op;
            switch (kind)
            {
                case 0 or 1:
                {
                    var spec = Palette[a % Palette.Length]();
                    var (e, r) = await BothAsync(s => s.SubmitRunAsync(spec, null));
                    if (e.Value is not null && r.Value is not null)
                    {
                        _runs.Add((e.Value.Run.Id, r.Value.Run.Id));
                    }

                    return $"submit palette[{a % Palette.Length}]";
                }

                case 2:
                {
                    var agent = Agents[a % Agents.Length];
                    var slots = 1 + (b % 4);
                    var (es, rs) = await BothAsync(s => s.ConnectAgentAsync(new AgentRegistration(
                        agent, "h", ["shell"], b % 2 == 0 ? ["default"] : ["default", "gpu"], new Dictionary<string, string>(), slots, [],
                        _held.Where(h => h.Agent == agent)
                            .Select(h => s == _embedded ? new AttemptRef(_runs[h.Run].Embedded, h.Step, h.Embedded) : new AttemptRef(_runs[h.Run].Redis, h.Step, h.Redis))
                            .ToList())));
                    if (es.Value is not null && rs.Value is not null)
                    {
                        if (_sessions.TryGetValue(agent, out var previous))
                        {
                            _oldSessions[agent] = previous;
                        }

                        _sessions[agent] = (es.Value.SessionId, rs.Value.SessionId);
                    }

                    return $"connect {agent} slots {slots}";
                }

                case 3 or 4 or 5:
                {
                    var agent = Agents[a % Agents.Length];

                    // Every fifth claim repeats an earlier claim id; a claim names the agent's current session, its
                    // previous one (stale), or none.
                    var repeat = b % 5 == 0 && _claimIds.Count > 0;
                    var claimId = repeat ? _claimIds[a % _claimIds.Count] : "c" + _claimIds.Count.ToString(CultureInfo.InvariantCulture);
                    if (!repeat)
                    {
                        _claimIds.Add(claimId);
                    }

                    (string Embedded, string Redis)? session = null;
                    var which = "no session";
                    if ((b / 5) % 4 == 0 && _oldSessions.TryGetValue(agent, out var old))
                    {
                        (session, which) = (old, "stale session");
                    }
                    else if ((b / 5) % 4 != 1 && _sessions.TryGetValue(agent, out var current))
                    {
                        (session, which) = (current, "current session");
                    }

                    var (e, r) = await BothAsync(s => s.ClaimAsync(new ClaimRequest(agent, 1 + (b % 3))
                    {
                        ClaimId = claimId,
                        SessionId = session is { } id ? (s == _embedded ? id.Embedded : id.Redis) : null,
                    }));
                    if (e.Value is not null && r.Value is not null)
                    {
                        Assert.Equal(e.Value.Select(x => (Index(x.RunId, embedded: true), x.StepId, x.Attempt)), r.Value.Select(x => (Index(x.RunId, embedded: false), x.StepId, x.Attempt)));
                        for (var i = 0; i < e.Value.Count; i++)
                        {
                            var token = e.Value[i].FencingToken;
                            if (!_held.Any(h => h.Embedded == token))
                            {
                                _held.Add((Index(e.Value[i].RunId, embedded: true), e.Value[i].StepId, agent, token, r.Value[i].FencingToken));
                            }
                        }
                    }

                    return $"claim {agent} id {claimId}{(repeat ? " (again)" : string.Empty)}, {which}";
                }

                case 6 or 7 or 8 or 9 or 10 or 11:
                {
                    if (_held.Count == 0)
                    {
                        return "report (nothing held)";
                    }

                    var h = _held[a % _held.Count];
                    var (name, build) = (kind, b % 4) switch
                    {
                        (6, _) => ("started", (Func<long, ConnectRequest>)(t => new ConnectRequest { StepStarted = new StepStarted { FencingToken = t } })),
                        (7, _) => ("progress", t => new ConnectRequest { StepProgress = new StepProgress { FencingToken = t, Percent = b % 101, Message = "m" + b } }),
                        (8, 0) => ("checkpoint", t => new ConnectRequest { StepCheckpoint = new StepCheckpoint { FencingToken = t, Data = ByteString.CopyFromUtf8("ck" + b) } }),
                        (8, _) => ("log", t => new ConnectRequest { StepLog = new StepLog { FencingToken = t, Stream = LogStream.Stdout, Lines = { "line " + b } } }),
                        (9 or 10, _) => ("completed", t => new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = t, Output = ByteString.CopyFromUtf8("out" + b), Usage = { ["tokens"] = b % 50 } } }),
                        _ => ("failed", t => new ConnectRequest { StepFailed = new StepFailed { FencingToken = t, Error = "boom", Permanent = b % 5 == 0, Usage = { ["tokens"] = b % 30 } } }),
                    };
                    // Sent on the stream of the agent holding the attempt in its current or previous session, on the
                    // other agent's stream, or by a caller that names no stream.
                    var other = Agents.First(x => x != h.Agent);
                    var (reporter, session, which) = ((a / 7) % 4) switch
                    {
                        0 => (null, null, "no stream"),
                        1 => (h.Agent, SessionOf(_sessions, h.Agent), "current session"),
                        2 => (h.Agent, SessionOf(_oldSessions, h.Agent), "previous session"),
                        _ => ((string?)other, SessionOf(_sessions, other), "another agent"),
                    };
                    var run = _runs[h.Run];
                    var (e, r) = await BothAsync(s => s.ReportAsync(
                    [
                        new AttemptReport(
                            new AttemptRef(s == _embedded ? run.Embedded : run.Redis, h.Step, s == _embedded ? h.Embedded : h.Redis),
                            build(s == _embedded ? h.Embedded : h.Redis))
                        {
                            AgentId = reporter,
                            SessionId = session is { } id ? (s == _embedded ? id.Embedded : id.Redis) : null,
                        },
                    ]));
                    if (e.Value is not null && r.Value is not null)
                    {
                        Assert.Equal(e.Value, r.Value);
                    }

                    if (name is "completed" or "failed" && e.Value?.Single() != ReportOutcome.NotOwner)
                    {
                        _held.Remove(h);
                    }

                    return $"{name} run {h.Run} step {h.Step} from {which}";
                }

                case 12:
                {
                    if (_runs.Count == 0)
                    {
                        return "cancel (no run)";
                    }

                    var run = _runs[a % _runs.Count];
                    await BothAsync(s => s.CancelRunAsync(s == _embedded ? run.Embedded : run.Redis, "test"));
                    return $"cancel run {a % _runs.Count}";
                }

                case 13:
                {
                    if (_runs.Count == 0)
                    {
                        return "pause/resume (no run)";
                    }

                    var run = _runs[a % _runs.Count];
                    if (b % 2 == 0)
                    {
                        await BothAsync(s => s.PauseRunAsync(s == _embedded ? run.Embedded : run.Redis));
                        return $"pause run {a % _runs.Count}";
                    }

                    await BothAsync(s => s.ResumeRunAsync(s == _embedded ? run.Embedded : run.Redis));
                    return $"resume run {a % _runs.Count}";
                }

                case 14:
                {
                    if (_runs.Count == 0)
                    {
                        return "retry (no run)";
                    }

                    var run = _runs[a % _runs.Count];
                    await BothAsync(s => s.RetryRunAsync(s == _embedded ? run.Embedded : run.Redis));
                    return $"retry run {a % _runs.Count}";
                }

                case 15:
                {
                    if (_runs.Count == 0)
                    {
                        return "gate (no run)";
                    }

                    var run = _runs[a % _runs.Count];
                    await BothAsync(s => s.DecideGateAsync(new GateDecisionInput(s == _embedded ? run.Embedded : run.Redis, "approve", b % 3 != 0, "tester", "c" + b)));
                    return $"gate run {a % _runs.Count} approve={b % 3 != 0}";
                }

                case 16:
                {
                    _time.Advance(TimeSpan.FromSeconds(1 + (a % 40)));
                    await BothAsync(s => s.RunMaintenanceAsync(100));
                    return $"advance {1 + (a % 40)} s + maintenance";
                }

                case 17:
                {
                    // An outage of the last b % 50 s, frozen before the maintenance pass as a replica does.
                    _time.Advance(TimeSpan.FromSeconds(1 + (a % 40)));
                    var now = _time.GetUtcNow();
                    var (e, r) = await BothAsync(s => s.FreezeLeasesAsync(now - TimeSpan.FromSeconds(b % 50), now));
                    Assert.Equal(e.Value, r.Value);
                    await BothAsync(s => s.RunMaintenanceAsync(100));
                    return $"advance {1 + (a % 40)} s + freeze {b % 50} s + maintenance";
                }

                case 18:
                {
                    var agent = Agents[a % Agents.Length];
                    var held = _held.Where(h => h.Agent == agent).ToList();

                    // From the agent's current session, its previous one (superseded), or without naming one.
                    var session = (b % 3) switch
                    {
                        0 => SessionOf(_sessions, agent),
                        1 => SessionOf(_oldSessions, agent),
                        _ => null,
                    };
                    var (e, r) = await BothAsync(s => s.RenewLeasesAsync(
                        agent,
                        held.Select(h => new AttemptRef(s == _embedded ? _runs[h.Run].Embedded : _runs[h.Run].Redis, h.Step, s == _embedded ? h.Embedded : h.Redis)).ToList(),
                        session is { } id ? (s == _embedded ? id.Embedded : id.Redis) : null));
                    if (e.Value is not null && r.Value is not null)
                    {
                        // The same attempts to stop, each named by its own store's token.
                        Assert.Equal(
                            e.Value.Select(t => _held.FindIndex(h => h.Embedded == t)).Order(),
                            r.Value.Select(t => _held.FindIndex(h => h.Redis == t)).Order());
                    }

                    return $"renew {agent} from {(b % 3) switch { 0 => "current session", 1 => "previous session", _ => "no session" }}";
                }

                default:
                {
                    var agent = Agents[a % Agents.Length];
                    // The agent's current session ends (an unknown agent: a session that never was).
                    var session = _sessions.GetValueOrDefault(agent, (Embedded: "none", Redis: "none"));
                    await BothAsync(s => s.DisconnectAgentAsync(agent, s == _embedded ? session.Embedded : session.Redis));
                    return $"disconnect {agent}";
                }
            }
        }

        private static (string Embedded, string Redis)? SessionOf(Dictionary<string, (string Embedded, string Redis)> sessions, string agent) =>
            sessions.TryGetValue(agent, out var session) ? session : null;

        private int Index(string runId, bool embedded) => _runs.FindIndex(r => (embedded ? r.Embedded : r.Redis) == runId);

        /// <summary>Runs <paramref name="call"/> on both stores; both must succeed, or both refuse with the same error and reason.</summary>
        private async Task<(Result<T> Embedded, Result<T> Redis)> BothAsync<T>(Func<IRunStore, Task<T>> call)
        {
            var e = await Result<T>.OfAsync(() => call(_embedded));
            var r = await Result<T>.OfAsync(() => call(_redis));
            Assert.True(e.Error == r.Error, $"embedded: {e.Error ?? "ok"}; redis: {r.Error ?? "ok"}");
            return (e, r);
        }

        private async Task BothAsync(Func<IRunStore, Task> call) => await BothAsync(async s => { await call(s); return true; });

        private async Task CompareAsync(string when)
        {
            for (var i = 0; i < _runs.Count; i++)
            {
                var e = await _embedded.GetRunAsync(_runs[i].Embedded);
                var r = await _redis.GetRunAsync(_runs[i].Redis);
                Assert.True(e is not null && r is not null, $"{when}: run {i} missing");
                e.Id = r.Id = $"run-{i}";
                Assert.True(e.Equals(r), $"{when}: run {i} differs\n{Difference(e, r)}");

                var ee = await _embedded.ReadEventsAsync(_runs[i].Embedded, 0, 10_000);
                var re = await _redis.ReadEventsAsync(_runs[i].Redis, 0, 10_000);
                var en = string.Join("\n", ee.Select(x => x.ToString().Replace(_runs[i].Embedded, "run", StringComparison.Ordinal)));
                var rn = string.Join("\n", re.Select(x => x.ToString().Replace(_runs[i].Redis, "run", StringComparison.Ordinal)));
                if (en != rn)
                {
                    var el = en.Split('\n');
                    var rl = rn.Split('\n');
                    var at = Enumerable.Range(0, Math.Min(el.Length, rl.Length)).FirstOrDefault(j => el[j] != rl[j], Math.Min(el.Length, rl.Length));
                    Assert.Fail($"{when}: events of run {i} differ from event {at + 1} ({el.Length} embedded, {rl.Length} redis)\n" +
                        $"embedded: {string.Join("\n          ", el.Skip(at).Take(3))}\nredis:    {string.Join("\n          ", rl.Skip(at).Take(3))}");
                }
            }

            // The run change feeds: the same entries (run ids are alike in both stores) at the same cursors.
            var ef = await ReadFeedAsync(_embedded);
            var rf = await ReadFeedAsync(_redis);
            Assert.True(ef == rf, $"{when}: run change feeds differ\nembedded: {ef}\nredis:    {rf}");

            var es = Describe(await _embedded.GetStatsAsync());
            var rs = Describe(await _redis.GetStatsAsync());
            Assert.True(es == rs, $"{when}: stats differ\nembedded: {es}\nredis:    {rs}");
        }

        private static async Task<string> ReadFeedAsync(IRunStore store)
        {
            var sb = new StringBuilder();
            var cursor = "0";
            while (true)
            {
                var page = await store.ReadRunChangesAsync(cursor, 1000);
                Assert.False(page.CursorExpired);
                foreach (var change in page.Changes)
                {
                    sb.Append(change.Cursor).Append(':').Append(change.RunId).Append('=').Append(change.State).Append(change.Deleted ? " deleted" : "").Append("; ");
                }

                if (page.Changes.Count == 0)
                {
                    return sb.ToString();
                }

                cursor = page.Cursor;
            }
        }

        /// <summary>The first steps (or the run's own fields) that differ, so a failure names what to look at.</summary>
        private static string Difference(Run e, Run r)
        {
            var lines = new List<string>();
            for (var s = 0; s < Math.Min(e.Steps.Count, r.Steps.Count); s++)
            {
                if (!e.Steps[s].Equals(r.Steps[s]))
                {
                    lines.Add($"step {e.Steps[s].Id}\nembedded: {e.Steps[s]}\nredis:    {r.Steps[s]}");
                }
            }

            var eRun = e.Clone();
            var rRun = r.Clone();
            eRun.Steps.Clear();
            rRun.Steps.Clear();
            if (!eRun.Equals(rRun))
            {
                lines.Add($"run\nembedded: {eRun}\nredis:    {rRun}");
            }

            return string.Join("\n", lines);
        }

        private string Describe(StoreStats stats)
        {
            var sb = new StringBuilder();
            foreach (var q in stats.Queues)
            {
                sb.Append(q).Append("; ");
            }

            foreach (var s in stats.Slots)
            {
                var text = s.ToString();
                for (var i = 0; i < _runs.Count; i++)
                {
                    text = text.Replace(_runs[i].Embedded, $"run-{i}", StringComparison.Ordinal).Replace(_runs[i].Redis, $"run-{i}", StringComparison.Ordinal);
                }

                sb.Append(text).Append("; ");
            }

            foreach (var (unit, amount) in stats.BudgetReserved.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                sb.Append(unit).Append('=').Append(amount.ToString("R", CultureInfo.InvariantCulture)).Append("; ");
            }

            return sb.ToString();
        }
    }

    private sealed record Result<T>(T? Value, string? Error)
    {
        public static async Task<Result<T>> OfAsync(Func<Task<T>> call)
        {
            try
            {
                return new Result<T>(await call(), null);
            }
            catch (RunStoreException ex)
            {
                return new Result<T>(default, $"{ex.Error}/{ex.Reason}");
            }
        }
    }
}
