using ControlPlane.Scheduler.Audit;

namespace ControlPlane.Scheduler.Redis;

/// <summary>The audit trail of this store's namespace (<see cref="RedisAuditStore"/>, a capped stream at <c>cp:{ns}:audit</c>), shared by its replicas.</summary>
public sealed partial class RedisRunStore
{
    private RedisAuditStore AuditStore => _audit ??= new RedisAuditStore(_db, _ns);

    Task<AuditRecord> IAuditStore.AppendAsync(AuditRecord entry, CancellationToken cancellationToken) => AuditStore.AppendAsync(entry, cancellationToken);

    Task<AuditPage> IAuditStore.ListAsync(AuditQuery query, CancellationToken cancellationToken) => AuditStore.ListAsync(query, cancellationToken);
}
