namespace ControlPlane.Scheduler.Audit;

/// <summary>
/// Where the audit trail of one namespace is kept: appended to, read newest first, bounded (the oldest entries go).
/// <see cref="EmbeddedAuditStore"/> in process; the Redis store keeps a capped stream under <c>cp:{ns}:audit</c>.
/// </summary>
public interface IAuditStore
{
    /// <summary>Most entries kept; older ones are dropped, in batches (Redis: XADD MAXLEN ~).</summary>
    public const int DefaultCapacity = 100_000;

    /// <summary>Most entries one ListAsync call examines when filtering by action, so a rare action cannot make one page scan the whole trail.</summary>
    public const int MaxScanPerPage = 10_000;

    /// <summary>Appends <paramref name="entry"/>; its Id and Time are ignored and set by the store (the store's clock). Returns the stored entry.</summary>
    Task<AuditRecord> AppendAsync(AuditRecord entry, CancellationToken cancellationToken);

    /// <summary>
    /// A page newest first. A cursor the store did not issue throws <see cref="ArgumentException"/> (ParamName
    /// "query"). A filtered page that examined <see cref="MaxScanPerPage"/> entries ends early with a cursor.
    /// </summary>
    Task<AuditPage> ListAsync(AuditQuery query, CancellationToken cancellationToken);
}
