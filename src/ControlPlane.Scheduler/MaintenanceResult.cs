namespace ControlPlane.Scheduler;

/// <summary>
/// What one maintenance pass did; <paramref name="RunsDeleted"/> counts finished runs deleted because their retention
/// passed, <paramref name="AgentsPruned"/> disconnected agents forgotten after <see cref="RunStoreOptions.AgentRetention"/>.
/// </summary>
public sealed record MaintenanceResult(int LeasesExpired, int RetriesReleased, int TimedOut, int RunsDeleted, int AgentsPruned);
