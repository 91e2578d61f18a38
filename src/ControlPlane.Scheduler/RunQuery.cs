using ControlPlane.V1;

namespace ControlPlane.Scheduler;

/// <summary>ListRuns filter and paging. PageSize 0 means 100; PageToken is opaque.</summary>
public sealed record RunQuery(RunState State = RunState.Unspecified, IReadOnlyDictionary<string, string>? Labels = null, int PageSize = 0, string? PageToken = null);
