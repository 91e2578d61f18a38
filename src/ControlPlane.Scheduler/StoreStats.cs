using ControlPlane.V1;

namespace ControlPlane.Scheduler;

/// <summary>Counters a test can assert on: every Used and every reservation is 0 once all runs are terminal.</summary>
public sealed record StoreStats(
    IReadOnlyList<QueueStats> Queues,
    IReadOnlyList<SlotUsage> Slots,
    IReadOnlyDictionary<string, double> BudgetReserved);
