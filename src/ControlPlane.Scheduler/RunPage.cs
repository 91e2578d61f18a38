using ControlPlane.V1;

namespace ControlPlane.Scheduler;

public sealed record RunPage(IReadOnlyList<Run> Runs, string? NextPageToken);
