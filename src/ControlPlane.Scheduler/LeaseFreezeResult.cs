namespace ControlPlane.Scheduler;

/// <summary>
/// What one <see cref="IRunStore.FreezeLeasesAsync"/> call did: every lease still running moved <paramref name="Shift"/>
/// later (zero when the interval was frozen already), <paramref name="LeasesMoved"/> of them.
/// </summary>
public sealed record LeaseFreezeResult(TimeSpan Shift, int LeasesMoved);
