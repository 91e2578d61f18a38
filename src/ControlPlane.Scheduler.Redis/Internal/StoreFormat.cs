using System.Globalization;
using ControlPlane.V1;
using StackExchange.Redis;

namespace ControlPlane.Scheduler.Redis.Internal;

/// <summary>
/// The format version of a namespace's keys, kept in <c>cp:{ns}:format</c>. A scheduler reads and writes one format
/// (<see cref="Current"/>); at start it finds the stored one and refuses to serve data it does not know. Every change
/// to what the scripts store adds a <see cref="Migration"/> from the previous version, run by a replica started with
/// the migrate setting (<c>cpctl server --migrate</c>). Every state-changing script also checks the stored version
/// before its first write (common.lua), so a replica left running on the old format after a migration refuses its
/// changes instead of mixing formats.
/// </summary>
internal static class StoreFormat
{
    /// <summary>The format this build reads and writes.</summary>
    public const int Current = 4;

    /// <summary>The key suffix under the namespace prefix.</summary>
    public const string KeySuffix = "format";

    /// <summary>One step from <paramref name="From"/> to <paramref name="From"/> + 1; must be safe to run again after a crash.</summary>
    public sealed record Migration(int From, string Description, Func<IDatabase, string, Task> ApplyAsync);

    /// <summary>
    /// Every migration, oldest first. Format 1 is the layout of every release before the version key existed, so data
    /// without the key but with runs or agents is format 1.
    /// </summary>
    public static IReadOnlyList<Migration> Migrations { get; } = For(new RunStoreOptions());

    /// <summary>Every migration, with the settings some of them need (the default retention).</summary>
    public static IReadOnlyList<Migration> For(RunStoreOptions options) =>
    [
        new(1, "index runs by label (cp:{ns}:lbl:*), so ListRuns with a label reads only the runs carrying it", IndexLabelsAsync),
        new(2, "give every run its retention, schedule finished runs for deletion (cp:{ns}:expire) and copy each run's transitions into its history list (cp:{ns}:h:*)", (db, prefix) => ScheduleRetentionAsync(db, prefix, options)),

        // 3 → 4: new runs keep their trace context in the run hash (_tp, a W3C traceparent). Older runs have none to
        // recover, and every reader takes a missing _tp as no trace (an empty Run.trace_id, attempt spans in traces of
        // their own), so nothing is rewritten; the version still moves, so a format-3 replica, which would drop the
        // context of the runs it submits, refuses to write beside this one.
        new(3, "keep each new run's trace context (_tp); runs submitted before have none and list an empty trace id", (_, _) => Task.CompletedTask),
    ];

    /// <summary>
    /// 2 → 3: every run without a retention field gets its spec's retention, else the default; a finished one is
    /// scheduled at its finish time plus that retention. Runs in flight are scheduled when they finish. Setting again
    /// changes nothing.
    /// </summary>
    private static async Task ScheduleRetentionAsync(IDatabase db, string prefix, RunStoreOptions options)
    {
        const int Chunk = 500;
        for (long start = 0; ; start += Chunk)
        {
            var runs = await db.SortedSetRangeByRankAsync(prefix + "runs", start, start + Chunk - 1).ConfigureAwait(false);
            if (runs.Length == 0)
            {
                return;
            }

            var batch = db.CreateBatch();
            var fields = runs.Select(r => batch.HashGetAsync(prefix + "r:" + (string)r!, ["_ret", "_st", "_fin", "_spec"])).ToList();
            batch.Execute();
            var writes = db.CreateBatch();
            var written = new List<Task>();
            for (var i = 0; i < runs.Length; i++)
            {
                var f = await fields[i].ConfigureAwait(false);
                if (!f[0].IsNull || f[3].IsNull)
                {
                    continue;
                }

                var retention = (long)options.RetentionOf(RunSpec.Parser.ParseFrom((byte[])f[3]!)).TotalMilliseconds;
                var key = prefix + "r:" + (string)runs[i]!;
                written.Add(writes.HashSetAsync(key, "_ret", retention));
                var finished = (int)f[1] is (int)RunState.Succeeded or (int)RunState.Failed or (int)RunState.Cancelled;
                if (finished && retention > 0 && double.TryParse((string?)f[2], NumberStyles.Float, CultureInfo.InvariantCulture, out var finishedAt))
                {
                    written.Add(writes.SortedSetAddAsync(prefix + "expire", runs[i], finishedAt + retention));
                }
            }

            writes.Execute();
            await Task.WhenAll(written).ConfigureAwait(false);
            foreach (var run in runs)
            {
                await CopyHistoryAsync(db, prefix, (string)run!).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// A run's transitions (run and step state changes) from its event stream into its history list, which GetRun
    /// reads instead of the stream. Rebuilt whole, so running it again after a crash gives the same list.
    /// </summary>
    private static async Task CopyHistoryAsync(IDatabase db, string prefix, string run)
    {
        const int Chunk = 1000;
        var history = prefix + "h:" + run;
        await db.KeyDeleteAsync(history).ConfigureAwait(false);
        RedisValue from = "-";
        while (true)
        {
            var entries = await db.StreamRangeAsync(prefix + "e:" + run, from, "+", Chunk).ConfigureAwait(false);
            var transitions = entries
                .Select(e => (string?)e["v"])
                .Where(v => v is not null && (v.StartsWith("[\"S\",", StringComparison.Ordinal) || v.StartsWith("[\"R\",", StringComparison.Ordinal)))
                .Select(v => (RedisValue)v)
                .ToArray();
            if (transitions.Length > 0)
            {
                await db.ListRightPushAsync(history, transitions).ConfigureAwait(false);
            }

            if (entries.Length < Chunk)
            {
                return;
            }

            from = "(" + (string)entries[^1].Id!;
        }
    }

    /// <summary>1 → 2: every run's labels into the label index, scored by its submit order. Adding again changes nothing.</summary>
    private static async Task IndexLabelsAsync(IDatabase db, string prefix)
    {
        const int Chunk = 500;
        for (long start = 0; ; start += Chunk)
        {
            var runs = await db.SortedSetRangeByRankWithScoresAsync(prefix + "runs", start, start + Chunk - 1).ConfigureAwait(false);
            if (runs.Length == 0)
            {
                return;
            }

            var batch = db.CreateBatch();
            var labels = runs.Select(r => batch.HashGetAsync(prefix + "r:" + (string)r.Element!, "_lbl")).ToList();
            batch.Execute();
            var writes = db.CreateBatch();
            var added = new List<Task>();
            for (var i = 0; i < runs.Length; i++)
            {
                foreach (var (key, value) in StepMeta.ParseMap(await labels[i].ConfigureAwait(false)))
                {
                    added.Add(writes.SortedSetAddAsync(LabelIndex.Key(prefix, key, value), runs[i].Element, runs[i].Score));
                }
            }

            writes.Execute();
            await Task.WhenAll(added).ConfigureAwait(false);
        }
    }

    /// <summary>What a start finds and does: the format found, and the migrations it ran.</summary>
    public sealed record Outcome(int Found, bool Stamped, IReadOnlyList<Migration> Ran);

    /// <summary>
    /// Finds the namespace's format and reconciles it with <see cref="Current"/>: stamps an empty or unversioned
    /// namespace, migrates an older format when <paramref name="migrate"/> is set, and otherwise refuses with a
    /// message saying which format it found and which it needs.
    /// </summary>
    public static async Task<Outcome> EnsureAsync(
        IDatabase db, string prefix, bool migrate, IReadOnlyList<Migration>? migrations = null, int current = Current, RunStoreOptions? options = null)
    {
        migrations ??= options is null ? Migrations : For(options);
        var key = prefix + KeySuffix;
        var stored = await db.StringGetAsync(key).ConfigureAwait(false);
        var stamped = false;
        int found;
        if (stored.IsNull)
        {
            // Runs, agents or counters without a version: the layout before the version key, which is format 1.
            var hasData = await db.KeyExistsAsync([prefix + "ctr", prefix + "runs", prefix + "agents"]).ConfigureAwait(false) > 0;
            found = hasData ? 1 : current;
            await db.StringSetAsync(key, found.ToString(CultureInfo.InvariantCulture), when: When.NotExists).ConfigureAwait(false);
            stamped = true;

            // Another replica may have stamped (or migrated) it first; what is stored now decides.
            stored = await db.StringGetAsync(key).ConfigureAwait(false);
        }

        if (!int.TryParse((string?)stored, NumberStyles.None, CultureInfo.InvariantCulture, out found) || found < 1)
        {
            throw new StoreFormatException(
                $"the key {key} holds '{stored}', not a format version; it is not ControlPlane data, or it was overwritten. " +
                "Point the scheduler at another Redis database or namespace, or restore the key.");
        }

        if (found > current)
        {
            throw new StoreFormatException(
                $"the data under {prefix} is format {found}, newer than format {current}, which this scheduler reads and writes. " +
                "A newer scheduler migrated it: run that version here too.");
        }

        if (found == current)
        {
            return new Outcome(found, stamped, []);
        }

        var pending = migrations.Where(m => m.From >= found && m.From < current).OrderBy(m => m.From).ToList();
        if (!migrate)
        {
            var steps = string.Join("; ", pending.Select(m => $"{m.From}→{m.From + 1}: {m.Description}"));
            throw new StoreFormatException(
                $"the data under {prefix} is format {found}; this scheduler needs format {current}. Stop the replicas of the older version, " +
                $"then start one replica with --migrate (CP_MIGRATE=true) to upgrade the data in place ({steps}).");
        }

        for (var version = found; version < current; version++)
        {
            var migration = pending.SingleOrDefault(m => m.From == version)
                ?? throw new StoreFormatException($"no migration from format {version} to {version + 1} is known; upgrade through an intermediate version.");
            await migration.ApplyAsync(db, prefix).ConfigureAwait(false);
            await db.StringSetAsync(key, (version + 1).ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
        }

        return new Outcome(found, stamped, pending);
    }
}

/// <summary>The stored data's format does not match this scheduler's; the message says which it found, which it needs and what to do.</summary>
public sealed class StoreFormatException : Exception
{
    public StoreFormatException()
    {
    }

    public StoreFormatException(string message)
        : base(message)
    {
    }

    public StoreFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
