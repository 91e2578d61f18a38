namespace ControlPlane.Cli.Internal;

/// <summary>What <c>cpctl server</c> was asked to run: where to listen (HOST:PORT), and the Redis store (null: the embedded store).</summary>
internal sealed record SchedulerHostSettings(string Listen, string? Redis);

/// <summary>What <c>cpctl agent</c> was asked to run.</summary>
internal sealed record AgentHostSettings(
    string SchedulerAddress,
    string? AgentId,
    int Slots,
    IReadOnlyList<string> Queues,
    IReadOnlyDictionary<string, string> Labels);

/// <summary>
/// What <c>cpctl dev</c> was asked to run: the scheduler, an agent and the embedded store in one process, running
/// the pipeline file at <paramref name="PipelinePath"/> (already resolved); <paramref name="HandleSignals"/>: Ctrl+C and SIGTERM are ours.
/// </summary>
internal sealed record DevSettings(string PipelinePath, string Listen, int Slots, bool KeepRunning, bool HandleSignals);
