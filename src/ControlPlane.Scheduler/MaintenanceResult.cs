namespace ControlPlane.Scheduler;

/// <summary>What one maintenance pass did.</summary>
public sealed record MaintenanceResult(int LeasesExpired, int RetriesReleased, int TimedOut);
