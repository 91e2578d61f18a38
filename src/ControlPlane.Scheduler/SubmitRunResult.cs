using ControlPlane.V1;

namespace ControlPlane.Scheduler;

/// <summary>The outcome of SubmitRunAsync: the run, and whether this call created it.</summary>
public sealed record SubmitRunResult(Run Run, bool Created);
