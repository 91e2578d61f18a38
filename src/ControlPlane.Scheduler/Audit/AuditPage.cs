namespace ControlPlane.Scheduler.Audit;

/// <summary>Entries newest first, and the cursor of the next (older) page, or null when there is none.</summary>
public sealed record AuditPage(IReadOnlyList<AuditRecord> Entries, string? NextCursor);
