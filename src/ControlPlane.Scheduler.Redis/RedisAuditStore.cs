using System.Globalization;
using System.Text.RegularExpressions;
using ControlPlane.Scheduler.Audit;
using ControlPlane.V1;
using StackExchange.Redis;

namespace ControlPlane.Scheduler.Redis;

/// <summary>
/// The audit trail of one namespace in Redis: a stream at <c>cp:{ns}:audit</c>, capped by XADD MAXLEN ~ (whole nodes
/// go, so it holds about <see cref="IAuditStore.DefaultCapacity"/> entries). A single XADD is atomic, so no script is
/// needed; its id ("&lt;ms&gt;-&lt;n&gt;") comes from the Redis server's clock and is the entry's time and cursor.
/// </summary>
public sealed partial class RedisAuditStore : IAuditStore
{
    private readonly IDatabase _db;
    private readonly RedisKey _key;
    private readonly int _capacity;

    public RedisAuditStore(IDatabase database, string ns, int capacity = IAuditStore.DefaultCapacity)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentException.ThrowIfNullOrEmpty(ns);
        _db = database;
        _key = "cp:{" + ns + "}:audit";
        _capacity = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "capacity must be at least 1");
    }

    public async Task<AuditRecord> AppendAsync(AuditRecord entry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        NameValueEntry[] fields =
        [
            new("actor", entry.Actor), new("role", entry.Role), new("action", entry.Action), new("target", entry.Target),
            new("outcome", (int)entry.Outcome), new("detail", entry.Detail),
        ];
        var id = await _db.StreamAddAsync(_key, fields, maxLength: _capacity, useApproximateMaxLength: true).ConfigureAwait(false);
        return entry with { Id = id!, Time = TimeOf(id!) };
    }

    public async Task<AuditPage> ListAsync(AuditQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (query.Cursor is { Length: > 0 } cursor && !StreamId().IsMatch(cursor))
        {
            throw new ArgumentException($"cursor '{cursor}' is not one this store issued; pass next_cursor of the previous page, or none", nameof(query));
        }

        var limit = Math.Max(1, query.Limit);
        var page = new List<AuditRecord>();
        var scanned = 0;
        string? last = query.Cursor is { Length: > 0 } ? query.Cursor : null;
        var exhausted = false;
        while (!exhausted && page.Count < limit && scanned < IAuditStore.MaxScanPerPage)
        {
            // Unfiltered, one read fetches the page; filtered, reads go on in batches until the page fills or the scan bound.
            var batch = query.Action is null ? limit - page.Count : Math.Min(IAuditStore.MaxScanPerPage - scanned, Math.Max(limit, 256));
            var entries = await _db.StreamRangeAsync(_key, "-", last is null ? "+" : "(" + last, batch, Order.Descending).ConfigureAwait(false);
            exhausted = entries.Length < batch;
            foreach (var entry in entries)
            {
                if (page.Count == limit)
                {
                    // The page is full with entries left over: the next page starts after the last one taken.
                    exhausted = false;
                    break;
                }

                scanned++;
                last = entry.Id!;
                var record = Parse(entry);
                if (query.Action is null || record.Action == query.Action)
                {
                    page.Add(record);
                }
            }
        }

        if (!exhausted && last is not null)
        {
            // Whether anything older is left, so the last page carries no cursor.
            exhausted = (await _db.StreamRangeAsync(_key, "-", "(" + last, 1, Order.Descending).ConfigureAwait(false)).Length == 0;
        }

        return new AuditPage(page, exhausted ? null : last);
    }

    private static AuditRecord Parse(StreamEntry entry)
    {
        string Field(string name) => (string?)entry[name] ?? "";
        var outcome = int.TryParse(Field("outcome"), NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? (AuditOutcome)value : AuditOutcome.Unspecified;
        return new AuditRecord(entry.Id!, TimeOf(entry.Id!), Field("actor"), Field("role"), Field("action"), Field("target"), outcome, Field("detail"));
    }

    private static DateTimeOffset TimeOf(string id) =>
        DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(id.AsSpan(0, id.IndexOf('-', StringComparison.Ordinal)), NumberStyles.None, CultureInfo.InvariantCulture));

    [GeneratedRegex("^[0-9]{1,20}-[0-9]{1,20}$", RegexOptions.CultureInvariant)]
    private static partial Regex StreamId();
}
