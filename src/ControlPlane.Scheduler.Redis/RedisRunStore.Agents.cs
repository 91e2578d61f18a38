using System.Globalization;
using System.Text.Json;
using ControlPlane.Scheduler.Redis.Internal;
using ControlPlane.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using StackExchange.Redis;
using ControlPlane.Scheduler.Internal;

namespace ControlPlane.Scheduler.Redis;

// AgentService and AdminService: agents, claims, reports, leases, the reaper, caps, stats and signals.
public sealed partial class RedisRunStore
{
    public async Task<AgentSession> ConnectAgentAsync(AgentRegistration registration, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(registration);
        if (!RunSpecValidator.IsValidName(registration.AgentId))
        {
            throw RunStoreException.Invalid("agent_id", $"agent_id '{registration.AgentId}' must match [a-z0-9][a-z0-9._-]{{0,62}}");
        }

        if (registration.Slots is < 0 or > AgentRegistration.MaxSlots)
        {
            throw RunStoreException.Invalid("slots", $"slots is {registration.Slots}; an agent has 0 to {AgentRegistration.MaxSlots} slots");
        }

        if (registration.RunningAttempts.Count > AgentRegistration.MaxSlots)
        {
            throw RunStoreException.Invalid("running_attempts",
                $"running_attempts lists {registration.RunningAttempts.Count} attempts; an agent runs at most {AgentRegistration.MaxSlots} at once");
        }

        var sessionId = registration.SessionId ?? Guid.NewGuid().ToString("N");
        var args = new List<RedisValue>
        {
            registration.AgentId,
            registration.Host ?? string.Empty,
            StepMeta.Strings(registration.Frameworks),
            StepMeta.Strings(StepDefaults.QueuesOf(registration)),
            StepMeta.Map(registration.Labels),
            registration.Slots,
            StepMeta.Strings(registration.Handlers),
            (long)_options.LeaseDuration.TotalMilliseconds,
            registration.RunningAttempts.Count,
            sessionId,
            registration.SessionId is null ? "1" : "0",
            AgentSession.UndeliveredReason,
        };
        AddAttempts(args, registration.RunningAttempts);
        var result = await EvalAsync(LuaScripts.AgentConnect, args, cancellationToken).ConfigureAwait(false);
        return new AgentSession(registration.AgentId, sessionId, Tokens(result));
    }

    public Task DisconnectAgentAsync(string agentId, string sessionId, CancellationToken cancellationToken = default) =>
        EvalAsync(LuaScripts.AgentState, [agentId, (int)AgentState.Disconnected, sessionId ?? string.Empty], cancellationToken);

    public async Task<Agent> DrainAgentAsync(string agentId, CancellationToken cancellationToken = default)
    {
        await EvalAsync(LuaScripts.AgentState, [agentId, (int)AgentState.Draining], cancellationToken).ConfigureAwait(false);
        return (await ListAgentsAsync(cancellationToken).ConfigureAwait(false)).Single(a => a.AgentId == agentId);
    }

    public async Task<IReadOnlyList<Agent>> ListAgentsAsync(CancellationToken cancellationToken = default)
    {
        var ids = await ReadAsync(d => d.SetMembersAsync(_prefix + "agents"), cancellationToken).ConfigureAwait(false);
        var batch = _db.CreateBatch();
        var reads = ids.Select(id => (Id: (string)id!, Read: batch.HashGetAllAsync(_prefix + "ag:" + (string)id!))).ToList();
        Execute(batch);
        var agents = new List<Agent>(reads.Count);
        var silentSince = NowMs - (long)_options.LeaseDuration.TotalMilliseconds;
        foreach (var (id, read) in reads)
        {
            var f = (await BatchedAsync(read).ConfigureAwait(false)).ToDictionary(e => (string)e.Name!, e => (string)e.Value!, StringComparer.Ordinal);
            var agent = AgentRecord.From(id, f, silentSince);
            agents.Add(agent);
        }

        return agents.OrderBy(a => a.AgentId, StringComparer.Ordinal).ToList();
    }

    public async Task<IReadOnlyList<Assignment>> ClaimAsync(ClaimRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        request.Validate();
        var result = await EvalAsync(
            LuaScripts.Claim,
            [
                request.AgentId, Math.Max(0, request.MaxSteps), (long)_options.LeaseDuration.TotalMilliseconds,
                request.ClaimId ?? string.Empty, request.SessionId ?? string.Empty,
            ],
            cancellationToken).ConfigureAwait(false);
        var rows = (RedisResult[])result!;
        var assignments = new List<Assignment>(rows.Length);
        foreach (var row in rows)
        {
            var r = (RedisResult[])row!;
            var assignment = new Assignment
            {
                RunId = (string)r[0]!,
                StepId = (string)r[1]!,
                Attempt = (int)r[2],
                FencingToken = long.Parse((string)r[3]!, CultureInfo.InvariantCulture),
                Spec = StepSpec.Parser.ParseFrom((byte[])r[4]!),
                LeaseExpiresAt = Ms(long.Parse((string)r[5]!, CultureInfo.InvariantCulture)),
                HasCheckpoint = (int)r[7] == 1,
                Traceparent = (string?)r[9] ?? string.Empty,
            };
            if (assignment.HasCheckpoint)
            {
                assignment.Checkpoint = ByteString.CopyFrom((byte[])r[6]!);
            }

            if (r.Length > 10 && long.TryParse((string?)r[10], NumberStyles.None, CultureInfo.InvariantCulture, out var readyMs))
            {
                assignment.ReadyAt = Ms(readyMs);
            }

            foreach (var input in (RedisResult[])r[8]!)
            {
                var i = (RedisResult[])input!;
                assignment.Inputs.Add(new StepInput
                {
                    StepId = (string)i[0]!,
                    Data = ByteString.CopyFrom((byte[])i[1]! ?? []),
                    Uri = (string)i[2]! ?? string.Empty,
                    Type = (string)i[3]! ?? string.Empty,
                });
            }

            assignments.Add(assignment);
        }

        return assignments;
    }

    public async Task<IReadOnlyList<ReportOutcome>> ReportAsync(IReadOnlyList<AttemptReport> reports, CancellationToken cancellationToken = default)
    {
        ReportLimits.ThrowIfNotStepReports(reports);
        var outcomes = new List<ReportOutcome>(reports.Count);
        for (var start = 0; start < reports.Count; start += _options.ReportBatch)
        {
            var count = Math.Min(_options.ReportBatch, reports.Count - start);
            var args = new List<RedisValue>(1 + (count * 9)) { count };
            for (var i = start; i < start + count; i++)
            {
                EncodeReport(args, reports[i]);
            }

            var result = (RedisResult[])(await EvalAsync(LuaScripts.Report, args, cancellationToken).ConfigureAwait(false))!;
            outcomes.AddRange(result.Select(r => (int)r switch
            {
                0 => ReportOutcome.Accepted,
                1 => ReportOutcome.StaleToken,
                3 => ReportOutcome.AlreadyApplied,
                4 => ReportOutcome.NotOwner,
                _ => ReportOutcome.UnknownAttempt,
            }));
        }

        return outcomes;
    }

    private void EncodeReport(List<RedisValue> args, AttemptReport report)
    {
        var a = report.Attempt;
        var message = ReportLimits.Normalize(report.Report);
        string kind;
        RedisValue a1 = RedisValue.EmptyString, a2 = RedisValue.EmptyString, a3 = RedisValue.EmptyString;
        switch (message.MessageCase)
        {
            case ConnectRequest.MessageOneofCase.StepStarted:
                kind = "S";
                break;
            case ConnectRequest.MessageOneofCase.StepProgress:
                kind = "P";
                a1 = Invariant(Math.Clamp(message.StepProgress.Percent, 0, 100));
                a2 = message.StepProgress.Message;
                break;
            case ConnectRequest.MessageOneofCase.StepCheckpoint when message.StepCheckpoint.Data.Length > _options.OutputInlineLimit:
                kind = "F";
                a1 = $"checkpoint of {message.StepCheckpoint.Data.Length} bytes exceeds the {_options.OutputInlineLimit}-byte limit; keep checkpoints small or store them elsewhere";
                a2 = "p";
                a3 = "{}";
                break;
            case ConnectRequest.MessageOneofCase.StepCheckpoint:
                kind = "C";
                a1 = message.StepCheckpoint.Data.ToByteArray();
                break;
            case ConnectRequest.MessageOneofCase.StepLog:
                kind = "L";
                a1 = (int)message.StepLog.Stream;
                a2 = StepMeta.Strings(message.StepLog.Lines);
                break;
            case ConnectRequest.MessageOneofCase.StepCompleted when message.StepCompleted.Output.Length > _options.OutputInlineLimit:
                kind = "F";
                a1 = $"output of {message.StepCompleted.Output.Length} bytes exceeds the {_options.OutputInlineLimit}-byte inline limit; store it elsewhere and report output_uri";
                a2 = "p";
                a3 = StepMeta.Units(message.StepCompleted.Usage);
                break;
            case ConnectRequest.MessageOneofCase.StepCompleted:
                kind = "D";
                a1 = message.StepCompleted.Output.ToByteArray();
                a2 = message.StepCompleted.OutputUri;
                a3 = StepMeta.Units(message.StepCompleted.Usage);
                break;
            case ConnectRequest.MessageOneofCase.StepFailed:
                var failed = message.StepFailed;
                kind = "F";
                a1 = failed.Error;
                a2 = (failed.Permanent ? "p" : string.Empty) + (failed.TimedOut ? "t" : string.Empty);
                a3 = StepMeta.Units(failed.Usage);
                break;
            case ConnectRequest.MessageOneofCase.StepDeclined:
                kind = "X";
                a1 = message.StepDeclined.Reason;
                break;
            default:
                throw RunStoreException.Invalid("message",
                    $"report for step '{a.StepId}' carries {message.MessageCase}; send one of StepStarted, StepProgress, StepCheckpoint, StepLog, StepCompleted, StepFailed, StepDeclined");
        }

        args.Add(kind);
        args.Add(a.RunId);
        args.Add(a.StepId);
        args.Add(a.FencingToken.ToString(CultureInfo.InvariantCulture));
        args.Add(a1);
        args.Add(a2);
        args.Add(a3);
        args.Add(report.AgentId ?? string.Empty);
        args.Add(report.SessionId ?? string.Empty);
    }

    public async Task<IReadOnlyList<long>> RenewLeasesAsync(string agentId, IReadOnlyList<AttemptRef> attempts, string? sessionId = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(attempts);
        var args = new List<RedisValue> { agentId, (long)_options.LeaseDuration.TotalMilliseconds, attempts.Count, sessionId ?? string.Empty };
        AddAttempts(args, attempts);
        return Tokens(await EvalAsync(LuaScripts.Renew, args, cancellationToken).ConfigureAwait(false));
    }

    public async Task<MaintenanceResult> RunMaintenanceAsync(int max, CancellationToken cancellationToken = default)
    {
        var result = (RedisResult[])(await EvalAsync(
            LuaScripts.Maintenance,
            [Math.Clamp(max, 1, RunStoreOptions.MaxBatch), _options.LeaseExpiryAttempts, (long)_options.AgentRetention.TotalMilliseconds],
            cancellationToken).ConfigureAwait(false))!;
        return new MaintenanceResult((int)result[0], (int)result[1], (int)result[2], (int)result[3], (int)result[4]);
    }

    public async Task<LeaseFreezeResult> FreezeLeasesAsync(DateTimeOffset since, DateTimeOffset until, CancellationToken cancellationToken = default)
    {
        var (sinceMs, untilMs) = LeaseFreeze.Validate(since, until);
        var result = (RedisResult[])(await EvalAsync(
            LuaScripts.FreezeLeases, [sinceMs, untilMs, (long)_options.LeaseDuration.TotalMilliseconds], cancellationToken).ConfigureAwait(false))!;
        return new LeaseFreezeResult(TimeSpan.FromMilliseconds((long)result[0]), (int)result[1]);
    }

    public async Task SetLimitAsync(LimitKind kind, string name, int limit, CancellationToken cancellationToken = default)
    {
        var field = kind switch
        {
            LimitKind.Queue => "ql",
            LimitKind.ConcurrencyKey => "kl",
            _ => throw RunStoreException.Invalid("kind", "kind must be LIMIT_KIND_QUEUE or LIMIT_KIND_CONCURRENCY_KEY"),
        };
        if (!RunSpecValidator.IsValidName(name))
        {
            throw RunStoreException.Invalid("name", $"name '{name}' must match [a-z0-9][a-z0-9._-]{{0,62}}");
        }

        if (limit < 0)
        {
            throw RunStoreException.Invalid("limit", $"limit is {limit}; use 0 to remove the cap or a positive number of steps");
        }

        await EvalAsync(LuaScripts.SetLimit, [field, name, limit], cancellationToken).ConfigureAwait(false);
    }

    public async Task<StoreStats> GetStatsAsync(CancellationToken cancellationToken = default)
    {
        var counters = (await ReadAsync(d => d.HashGetAllAsync(_prefix + "slots"), cancellationToken).ConfigureAwait(false))
            .ToDictionary(e => (string)e.Name!, e => (string)e.Value!, StringComparer.Ordinal);
        var agents = await ListAgentsAsync(cancellationToken).ConfigureAwait(false);
        var live = await ReadAsync(d => d.SetMembersAsync(_prefix + "live"), cancellationToken).ConfigureAwait(false);
        var batch = _db.CreateBatch();
        var runReads = live.Select(r => (Id: (string)r!, Read: batch.HashGetAsync(RunKey((string)r!), ["_used", "_cap"]), Order: batch.SortedSetScoreAsync(_prefix + "runs", r))).ToList();
        Execute(batch);

        string[] Names(string kind) =>
            counters.Keys.Where(k => k.StartsWith(kind + ":", StringComparison.Ordinal)).Select(k => k[(kind.Length + 1)..]).ToArray();
        long Counter(string field) => RunSnapshot.Long(counters, field);

        // A queue is listed while it has ready or running steps, a cap, or an agent serving it: counters back at 0 stay
        // in the hash, but an idle queue nobody serves is not shown (as in the embedded store).
        var queueNames = new SortedSet<string>(
            Names("r").Where(q => Counter("r:" + q) > 0).Concat(Names("q").Where(q => Counter("q:" + q) > 0)).Concat(Names("ql")),
            StringComparer.Ordinal);
        foreach (var agent in agents)
        {
            queueNames.UnionWith(agent.Queues);
        }

        var queues = queueNames.Select(q => new QueueStats
        {
            Queue = q,
            Ready = Counter("r:" + q),
            Running = Counter("q:" + q),
            Agents = agents.Count(a => a.State == AgentState.Connected && a.Queues.Contains(q)),
        }).ToList();

        var slots = new List<SlotUsage>();
        slots.AddRange(agents.Select(a => new SlotUsage("agent", a.AgentId, a.UsedSlots, a.Slots)));
        var runs = new List<(string Id, long Used, long Cap, double Order)>();
        foreach (var (id, read, order) in runReads)
        {
            var v = await BatchedAsync(read).ConfigureAwait(false);
            runs.Add((id, (long)v[0], (long)v[1], await BatchedAsync(order).ConfigureAwait(false) ?? double.MaxValue));
        }

        // In submit order, as the embedded store lists them.
        slots.AddRange(runs.OrderBy(r => r.Order).ThenBy(r => r.Id, StringComparer.Ordinal).Select(r => new SlotUsage("run", r.Id, r.Used, r.Cap)));
        // Counters back at 0 stay in the hash; a row is shown while something is held or a cap is set.
        slots.AddRange(Names("q").Where(q => Counter("q:" + q) != 0).Union(Names("ql")).Order(StringComparer.Ordinal)
            .Select(q => new SlotUsage("queue", q, Counter("q:" + q), Counter("ql:" + q))));
        slots.AddRange(Names("k").Where(k => Counter("k:" + k) != 0).Union(Names("kl")).Order(StringComparer.Ordinal)
            .Select(k => new SlotUsage("key", k, Counter("k:" + k), Counter("kl:" + k))));
        var reserved = Names("b").Where(u => RunSnapshot.Double(counters, "b:" + u) != 0)
            .ToDictionary(u => u, u => RunSnapshot.Double(counters, "b:" + u), StringComparer.Ordinal);
        return new StoreStats(queues, slots, reserved);
    }

    public async Task<IAsyncDisposable> SubscribeAsync(Action<StoreSignal> handler, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var subscriber = _redis.GetSubscriber();
        var channel = new RedisChannel(_prefix + "sig", RedisChannel.PatternMode.Literal);
        Action<RedisChannel, RedisValue> onMessage = (_, message) =>
        {
            List<StoreSignal> signals;
            try
            {
                signals = DecodeSignals((string)message!);
            }
            catch (JsonException ex)
            {
                RedisStoreLog.BadSignal(_logger, ex.Message);
                return;
            }

            foreach (var signal in signals)
            {
                handler(signal);
            }
        };
        await _readRetry.ExecuteAsync(async _ => await subscriber.SubscribeAsync(channel, onMessage).ConfigureAwait(false), cancellationToken)
            .ConfigureAwait(false);
        return new RedisSubscription(subscriber, channel, onMessage);
    }

    /// <summary>One published message carries every wake-up of one script call.</summary>
    private static List<StoreSignal> DecodeSignals(string json)
    {
        var signals = new List<StoreSignal>();
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        foreach (var c in Array(root, "c"))
        {
            signals.Add(new AttemptCancelRequested(c[0].GetString() ?? string.Empty, Long(c[1]), c[2].GetString() ?? string.Empty));
        }

        foreach (var d in Array(root, "d"))
        {
            signals.Add(new AgentDrainRequested(d.GetString() ?? string.Empty));
        }

        foreach (var r in Array(root, "r"))
        {
            signals.Add(new ReadyWork(r.GetString() ?? string.Empty));
        }

        var e = Array(root, "e").ToList();
        for (var i = 0; i + 1 < e.Count; i += 2)
        {
            signals.Add(new RunEventsAppended(e[i].GetString() ?? string.Empty, Long(e[i + 1])));
        }

        return signals;

        // Lua's cjson writes an empty table as {}: treat anything but an array as empty.
        static IEnumerable<JsonElement> Array(JsonElement root, string name) =>
            root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array ? v.EnumerateArray() : [];

        static long Long(JsonElement v) =>
            v.ValueKind == JsonValueKind.String ? long.Parse(v.GetString()!, CultureInfo.InvariantCulture) : (long)v.GetDouble();
    }

    private static void AddAttempts(List<RedisValue> args, IReadOnlyList<AttemptRef> attempts)
    {
        foreach (var a in attempts)
        {
            args.Add(a.RunId);
            args.Add(a.StepId);
            args.Add(a.FencingToken.ToString(CultureInfo.InvariantCulture));
        }
    }

    private static List<long> Tokens(RedisResult result) =>
        ((RedisResult[])result!).Select(r => long.Parse((string)r!, CultureInfo.InvariantCulture)).ToList();

    private static Timestamp? Ms(long ms) => AgentRecord.Ms(ms);
}
