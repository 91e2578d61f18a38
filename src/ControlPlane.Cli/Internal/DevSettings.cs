namespace ControlPlane.Cli.Internal;

/// <summary>
/// What <c>cpctl dev</c> was asked to run: the scheduler, an agent and the embedded store in one process, running
/// the pipeline file at <paramref name="PipelinePath"/> (already resolved); <paramref name="HandleSignals"/>: Ctrl+C and SIGTERM are ours.
/// </summary>
internal sealed record DevSettings(string PipelinePath, string Listen, string? HttpListen, int Slots, bool KeepRunning, bool HandleSignals);
