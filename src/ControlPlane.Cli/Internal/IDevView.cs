using ControlPlane.V1;

namespace ControlPlane.Cli.Internal;

/// <summary>How a dev session shows its run: live progress bars on a terminal, plain lines otherwise.</summary>
internal interface IDevView
{
    /// <summary>Renders the run's events until the stream ends (the run reached a final state).</summary>
    Task FollowAsync(string runId, RunSpec spec, IAsyncEnumerable<RunEvent> events);

    /// <summary>A message of the session itself (not of the run); safe to call while <see cref="FollowAsync"/> runs.</summary>
    void Note(string line);

    /// <summary>The final table: each step's state, attempts, duration and output size.</summary>
    void Summary(Run run);
}
