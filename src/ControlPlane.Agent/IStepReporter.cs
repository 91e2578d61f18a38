using ControlPlane.V1;

namespace ControlPlane.Agent;

/// <summary>Where a running attempt sends what it reports before its result. Calls are cheap and never block on the network.</summary>
public interface IStepReporter
{
    /// <summary>Progress 0-100 with an optional message.</summary>
    void ReportProgress(double percent, string? message);

    /// <summary>A checkpoint; the next attempt of the step receives its bytes (at most 1 MiB).</summary>
    void ReportCheckpoint(ReadOnlyMemory<byte> data);

    /// <summary>One line of the step's log.</summary>
    void ReportLog(LogStream stream, string line);
}
