using ControlPlane.V1;

namespace ControlPlane.Scheduler.Audit;

/// <summary>
/// One audited action: who (<paramref name="Actor"/>, <paramref name="Role"/>), what (<paramref name="Action"/>, one of
/// <see cref="AuditActions"/>), to what (<paramref name="Target"/>) and how it ended. The store assigns
/// <paramref name="Id"/> and <paramref name="Time"/>. Never holds a token secret or a secret value.
/// </summary>
public sealed record AuditRecord(
    string Id,
    DateTimeOffset Time,
    string Actor,
    string Role,
    string Action,
    string Target,
    AuditOutcome Outcome,
    string Detail)
{
    /// <summary>The entry as AuditService returns it.</summary>
    public AuditEntry ToProto() => new()
    {
        Id = Id,
        Time = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(Time),
        Actor = Actor,
        Role = Role,
        Action = Action,
        Target = Target,
        Outcome = Outcome,
        Detail = Detail,
    };
}
