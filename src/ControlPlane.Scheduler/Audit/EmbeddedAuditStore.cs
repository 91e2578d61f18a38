using System.Globalization;

namespace ControlPlane.Scheduler.Audit;

/// <summary>
/// The audit trail in process: a bounded list, newest last, ids a decimal sequence. When it grows a tenth past
/// its capacity the oldest tenth goes at once, as Redis trims a capped stream by whole nodes.
/// </summary>
public sealed class EmbeddedAuditStore(TimeProvider? time = null, int capacity = IAuditStore.DefaultCapacity) : IAuditStore
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly int _capacity = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "capacity must be at least 1");
    private readonly List<(long Sequence, AuditRecord Entry)> _entries = [];
    private readonly Lock _gate = new();
    private long _next;

    /// <summary>Entries kept now.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    public Task<AuditRecord> AppendAsync(AuditRecord entry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (_gate)
        {
            var sequence = ++_next;

            // Millisecond precision, as the Redis stream's ids carry.
            var now = DateTimeOffset.FromUnixTimeMilliseconds(_time.GetUtcNow().ToUnixTimeMilliseconds());
            var stored = entry with { Id = sequence.ToString(CultureInfo.InvariantCulture), Time = now };
            _entries.Add((sequence, stored));
            if (_entries.Count > _capacity + Math.Max(1, _capacity / 10))
            {
                _entries.RemoveRange(0, _entries.Count - _capacity);
            }

            return Task.FromResult(stored);
        }
    }

    public Task<AuditPage> ListAsync(AuditQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var before = long.MaxValue;
        if (query.Cursor is { Length: > 0 } cursor
            && (!long.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out before) || before <= 0))
        {
            throw new ArgumentException($"cursor '{cursor}' is not one this store issued; pass next_cursor of the previous page, or none", nameof(query));
        }

        lock (_gate)
        {
            var page = new List<AuditRecord>();
            var scanned = 0;
            long last = 0;
            var index = _entries.Count - 1;
            while (index >= 0 && _entries[index].Sequence >= before)
            {
                index--;
            }

            for (; index >= 0 && page.Count < Math.Max(1, query.Limit) && scanned < IAuditStore.MaxScanPerPage; index--)
            {
                var (sequence, entry) = _entries[index];
                scanned++;
                last = sequence;
                if (query.Action is null || entry.Action == query.Action)
                {
                    page.Add(entry);
                }
            }

            var next = index >= 0 ? last.ToString(CultureInfo.InvariantCulture) : null;
            return Task.FromResult(new AuditPage(page, next));
        }
    }
}
