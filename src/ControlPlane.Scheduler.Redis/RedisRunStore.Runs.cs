using System.Globalization;
using System.Text.Json;
using ControlPlane.Scheduler.Redis.Internal;
using ControlPlane.V1;
using Google.Protobuf;
using StackExchange.Redis;
using ControlPlane.Scheduler.Internal;

namespace ControlPlane.Scheduler.Redis;

// RunService: submit, read, list, cancel, pause, resume, retry, gates, events and outputs.
public sealed partial class RedisRunStore
{
    private static readonly RedisValue[] SummaryFields =
        ["_st", "_name", "_lbl", "_idem", "_err", "_seq", "_crt", "_sta", "_fin", "_res", "_usd", "_tp", "_spec"];

    public Task<SubmitRunResult> SubmitRunAsync(RunSpec spec, string? idempotencyKey, CancellationToken cancellationToken = default) =>
        SubmitRunAsync(spec, idempotencyKey, traceParent: null, cancellationToken);

    public async Task<SubmitRunResult> SubmitRunAsync(RunSpec spec, string? idempotencyKey, string? traceParent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        traceParent = RunTrace.Check(traceParent);
        if (idempotencyKey is { Length: > 0 } && idempotencyKey.Length > _options.MaxIdempotencyKeyLength)
        {
            throw RunStoreException.Invalid("idempotency_key",
                $"idempotency_key is {idempotencyKey.Length} characters; at most {_options.MaxIdempotencyKeyLength} are allowed");
        }

        RunSpecValidator.ThrowIfInvalid(spec);
        var runId = _options.RunIdGenerator?.Invoke(_time.GetUtcNow()) ?? Guid.CreateVersion7(_time.GetUtcNow()).ToString("N");
        var metas = StepMeta.Build(spec);
        var args = new List<RedisValue>(11 + (spec.Steps.Count * 3))
        {
            runId,
            idempotencyKey ?? string.Empty,
            spec.ToByteArray(),
            spec.Name,
            StepMeta.Map(spec.Labels),
            spec.Concurrency,
            StepMeta.Units(spec.Budget),
            StepMeta.Strings(spec.Steps.Select(s => s.Id)),
            spec.Steps.Count,
            (long)_options.RetentionOf(spec).TotalMilliseconds,
            traceParent,
        };
        for (var i = 0; i < spec.Steps.Count; i++)
        {
            // Assignments carry the resolved queue and slot count, as the agent runs them.
            var step = spec.Steps[i].Clone();
            step.Queue = StepDefaults.QueueOf(spec, step);
            step.Slots = StepDefaults.SlotsOf(step);
            args.Add(step.Id);
            args.Add(metas[i]);
            args.Add(step.ToByteArray());
        }

        var result = (RedisResult[])(await EvalAsync(LuaScripts.Submit, args, cancellationToken).ConfigureAwait(false))!;
        var created = (long)result[0] == 1;
        var id = (string)result[1]!;
        if (created)
        {
            // The script returns the new run as get_run would read it back.
            return new SubmitRunResult(Snapshot(id, result[2], spec.Clone(), result[3], result[4], result[5]), Created: true);
        }

        var run = await GetRunAsync(id, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"run {id} vanished right after it was submitted");
        return new SubmitRunResult(run, created);
    }

    public async Task<Run?> GetRunAsync(string runId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runId);
        var result = await InvokeAsync(
            LuaScripts.GetRun, [RunKey(runId), _prefix + "h:" + runId, _prefix + "slots", _prefix + "agents"], [_prefix + "ag:"], cancellationToken).ConfigureAwait(false);
        if (result.IsNull)
        {
            return null;
        }

        var parts = (RedisResult[])result!;
        return Snapshot(runId, parts[0], RunSpec.Parser.ParseFrom((byte[])parts[1]!), parts[2], parts[3], parts[4]);
    }

    /// <summary>A Run from a get_run reply: hash fields, event entries, and slots and agents when a step is READY.</summary>
    private static Run Snapshot(string runId, RedisResult fields, RunSpec spec, RedisResult events, RedisResult slots, RedisResult agents)
    {
        BlockedContext? blocked = null;
        if (!slots.IsNull)
        {
            var records = ((RedisResult[])agents!)
                .Select(a => (RedisResult[])a!)
                .Select(a => AgentRecord.From((string)a[0]!, Flat(a[1])))
                .ToList();
            blocked = new BlockedContext(Flat(slots), records);
        }

        return RunSnapshot.Build(runId, Flat(fields), spec, EventCodec.DecodeRange(runId, events), blocked);
    }

    private static Dictionary<string, string> Flat(RedisResult result)
    {
        var flat = (RedisResult[])result!;
        var fields = new Dictionary<string, string>(flat.Length / 2, StringComparer.Ordinal);
        for (var i = 0; i + 1 < flat.Length; i += 2)
        {
            fields[(string)flat[i]!] = (string)flat[i + 1]!;
        }

        return fields;
    }

    public async Task<RunPage> ListRunsAsync(RunQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        var pageSize = query.PageSize switch
        {
            < 0 => throw RunStoreException.Invalid("page_size", $"page_size is {query.PageSize}; use 0 (100) or 1..{_options.MaxPageSize}"),
            0 => 100,
            _ => Math.Min(query.PageSize, _options.MaxPageSize),
        };
        var before = long.MaxValue;
        if (!string.IsNullOrEmpty(query.PageToken) && !long.TryParse(query.PageToken, NumberStyles.None, CultureInfo.InvariantCulture, out before))
        {
            throw RunStoreException.Invalid("page_token", "page_token is not one this server issued; pass next_page_token from the previous response");
        }

        // With labels, walk the smallest label index (runs carrying that pair, by submit order) instead of every run;
        // a pair no run carries ends the search at once.
        RedisKey index = _prefix + "runs";
        if (query.Labels is { Count: > 0 })
        {
            var keys = query.Labels.Select(l => (RedisKey)LabelIndex.Key(_prefix, l.Key, l.Value)).ToList();
            var sizes = await ReadAsync(
                async d =>
                {
                    var batch = d.CreateBatch();
                    var cards = keys.Select(k => batch.SortedSetLengthAsync(k)).ToList();
                    batch.Execute();
                    return await Task.WhenAll(cards).ConfigureAwait(false);
                },
                cancellationToken).ConfigureAwait(false);
            var smallest = Array.IndexOf(sizes, sizes.Min());
            if (sizes[smallest] == 0)
            {
                return new RunPage([], null);
            }

            index = keys[smallest];
        }

        var matches = new List<(Run Run, long Order)>();
        const int chunk = 200;
        var skip = 0;
        while (matches.Count <= pageSize)
        {
            var candidates = await ReadAsync(
                d => d.SortedSetRangeByScoreWithScoresAsync(index, double.NegativeInfinity, before, Exclude.Stop, Order.Descending, skip, chunk),
                cancellationToken).ConfigureAwait(false);
            if (candidates.Length == 0)
            {
                break;
            }

            skip += candidates.Length;
            var batch = _db.CreateBatch();
            var reads = candidates.Select(c => batch.HashGetAsync(RunKey((string)c.Element!), SummaryFields)).ToList();
            Execute(batch);
            for (var i = 0; i < candidates.Length && matches.Count <= pageSize; i++)
            {
                var values = await BatchedAsync(reads[i]).ConfigureAwait(false);
                if (values[0].IsNull)
                {
                    continue;
                }

                var fields = SummaryFieldsOf(values);
                var state = (RunState)RunSnapshot.Int(fields, "_st");
                if (query.State != RunState.Unspecified && state != query.State)
                {
                    continue;
                }

                var labels = StepMeta.ParseMap(RunSnapshot.Get(fields, "_lbl"));
                if (query.Labels is not null && !query.Labels.All(l => labels.TryGetValue(l.Key, out var v) && v == l.Value))
                {
                    continue;
                }

                var spec = RunSpec.Parser.ParseFrom((byte[])values[^1]!);
                spec.Steps.Clear();
                matches.Add((RunSnapshot.Summary((string)candidates[i].Element!, fields, spec), (long)candidates[i].Score));
            }

            if (candidates.Length < chunk)
            {
                break;
            }
        }

        var page = matches.Take(pageSize).ToList();
        var next = matches.Count > pageSize ? page[^1].Order.ToString(CultureInfo.InvariantCulture) : null;
        return new RunPage(page.Select(m => m.Run).ToList(), next);
    }

    /// <summary>The hash fields of a <see cref="SummaryFields"/> read, without the spec (the last).</summary>
    private static Dictionary<string, string> SummaryFieldsOf(RedisValue[] values)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var f = 0; f < SummaryFields.Length - 1; f++)
        {
            if (!values[f].IsNull)
            {
                fields[(string)SummaryFields[f]!] = (string)values[f]!;
            }
        }

        return fields;
    }

    public async Task<IReadOnlyList<Run?>> GetRunSummariesAsync(IReadOnlyList<string> runIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runIds);
        if (runIds.Count == 0)
        {
            return [];
        }

        var values = await ReadAsync(
            async d =>
            {
                var batch = d.CreateBatch();
                var reads = runIds.Select(id => batch.HashGetAsync(RunKey(id), SummaryFields)).ToList();
                batch.Execute();
                return await Task.WhenAll(reads).ConfigureAwait(false);
            },
            cancellationToken).ConfigureAwait(false);
        var runs = new Run?[runIds.Count];
        for (var i = 0; i < runIds.Count; i++)
        {
            if (values[i][0].IsNull)
            {
                continue;
            }

            var spec = RunSpec.Parser.ParseFrom((byte[])values[i][^1]!);
            spec.Steps.Clear();
            runs[i] = RunSnapshot.Summary(runIds[i], SummaryFieldsOf(values[i]), spec);
        }

        return runs;
    }

    public async Task<RunChangePage> ReadRunChangesAsync(string? afterCursor, int max, CancellationToken cancellationToken = default)
    {
        var after = afterCursor is null ? (long?)null : RunFeedCursor.Parse(afterCursor);
        max = RunFeedCursor.Clamp(max);
        var reply = (RedisResult[])(await InvokeAsync(
            LuaScripts.RunFeed,
            [_prefix + "runfeed", _prefix + "runfeed:n"],
            [after is { } a ? a.ToString(CultureInfo.InvariantCulture) : "", max],
            cancellationToken).ConfigureAwait(false))!;
        var newest = RunFeedCursor.Of((long)reply[0]);
        if ((long)reply[1] == 1)
        {
            return new RunChangePage([], newest, CursorExpired: true);
        }

        if (after is null)
        {
            return new RunChangePage([], newest, CursorExpired: false);
        }

        var changes = new List<RunChange>();
        foreach (RedisResult entry in (RedisResult[])reply[2]!)
        {
            var parts = (RedisResult[])entry!;
            var id = (string)parts[0]!;
            var flat = (RedisResult[])parts[1]!;
            string? runId = null;
            var state = RunState.Unspecified;
            var deleted = false;
            for (var i = 0; i + 1 < flat.Length; i += 2)
            {
                switch ((string)flat[i]!)
                {
                    case "r": runId = (string)flat[i + 1]!; break;
                    case "s": state = (RunState)int.Parse((string)flat[i + 1]!, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture); break;
                    case "d": deleted = true; break;
                }
            }

            if (runId is not null)
            {
                changes.Add(new RunChange(id[..id.IndexOf('-', StringComparison.Ordinal)], runId, state, deleted));
            }
        }

        return new RunChangePage(changes, changes.Count > 0 ? changes[^1].Cursor : afterCursor!, CursorExpired: false);
    }

    public async Task<Run> CancelRunAsync(string runId, string reason, CancellationToken cancellationToken = default)
    {
        await EvalAsync(LuaScripts.Cancel, [runId, reason ?? string.Empty], cancellationToken).ConfigureAwait(false);
        return await MustGetRunAsync(runId, cancellationToken).ConfigureAwait(false);
    }

    public async Task<Run> PauseRunAsync(string runId, CancellationToken cancellationToken = default)
    {
        await EvalAsync(LuaScripts.Pause, [runId], cancellationToken).ConfigureAwait(false);
        return await MustGetRunAsync(runId, cancellationToken).ConfigureAwait(false);
    }

    public async Task<Run> ResumeRunAsync(string runId, CancellationToken cancellationToken = default)
    {
        await EvalAsync(LuaScripts.Resume, [runId], cancellationToken).ConfigureAwait(false);
        return await MustGetRunAsync(runId, cancellationToken).ConfigureAwait(false);
    }

    public async Task<Run> RetryRunAsync(string runId, CancellationToken cancellationToken = default)
    {
        await EvalAsync(LuaScripts.RetryRun, [runId], cancellationToken).ConfigureAwait(false);
        return await MustGetRunAsync(runId, cancellationToken).ConfigureAwait(false);
    }

    public async Task<Run> DecideGateAsync(GateDecisionInput decision, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(decision);
        await EvalAsync(
            LuaScripts.Gate,
            [decision.RunId, decision.StepId, decision.Approve ? "1" : "0", decision.DecidedBy ?? string.Empty, decision.Comment ?? string.Empty],
            cancellationToken).ConfigureAwait(false);
        return await MustGetRunAsync(decision.RunId, cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<RunEvent>> ReadEventsAsync(string runId, long afterSeq, int max, CancellationToken cancellationToken = default)
    {
        var take = Math.Clamp(max, 0, _options.EventReadBatch);
        var start = (Math.Max(0, afterSeq) + 1).ToString(CultureInfo.InvariantCulture) + "-0";
        var range = take == 0
            ? null
            : await ReadAsync(d => d.ExecuteAsync("XRANGE", EventsKey(runId), start, "+", "COUNT", take), cancellationToken).ConfigureAwait(false);
        var events = range is null ? [] : EventCodec.DecodeRange(runId, range);
        if (events.Count == 0 && !await ReadAsync(d => d.KeyExistsAsync(RunKey(runId)), cancellationToken).ConfigureAwait(false))
        {
            throw NoSuchRun(runId);
        }

        return events;
    }

    public async Task<StepOutput?> GetStepOutputAsync(string runId, string stepId, CancellationToken cancellationToken = default)
    {
        var p = stepId + ":";
        var values = await ReadAsync(d => d.HashGetAsync(RunKey(runId), ["_st", p + "m", p + "o", p + "ou", p + "os", p + "od"]), cancellationToken)
            .ConfigureAwait(false);
        if (values[0].IsNull)
        {
            throw NoSuchRun(runId);
        }

        if (values[1].IsNull)
        {
            throw new RunStoreException(RunStoreError.NotFound, ErrorReason.StepNotFound, $"run '{runId}' has no step '{stepId}'");
        }

        if (values[4].IsNull || values[5] == "1")
        {
            return null;
        }

        using var meta = JsonDocument.Parse((string)values[1]!);
        return new StepOutput
        {
            Data = values[2].IsNull ? ByteString.Empty : ByteString.CopyFrom((byte[])values[2]!),
            Uri = values[3].IsNull ? string.Empty : (string)values[3]!,
            Type = meta.RootElement.GetProperty("ot").GetString() ?? string.Empty,
        };
    }

    private async Task<Run> MustGetRunAsync(string runId, CancellationToken cancellationToken) =>
        await GetRunAsync(runId, cancellationToken).ConfigureAwait(false) ?? throw NoSuchRun(runId);

    private static RunStoreException NoSuchRun(string runId) =>
        new(RunStoreError.NotFound, ErrorReason.RunNotFound, $"run '{runId}' not found; check the run id (ListRuns shows existing runs)");
}
