namespace ControlPlane.Scheduler;

public sealed record SlotUsage(string Kind, string Name, long Used, long Limit);
