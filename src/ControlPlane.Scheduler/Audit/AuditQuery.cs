namespace ControlPlane.Scheduler.Audit;

/// <summary>A page of the audit trail, newest first: up to <paramref name="Limit"/> entries older than <paramref name="Cursor"/>, of <paramref name="Action"/> only when given.</summary>
public sealed record AuditQuery(int Limit, string? Cursor, string? Action);
