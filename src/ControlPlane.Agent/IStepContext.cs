namespace ControlPlane.Agent;

/// <summary>What a .NET step handler sees of its attempt.</summary>
public interface IStepContext
{
    /// <summary>The run the step belongs to.</summary>
    string RunId { get; }

    /// <summary>The step's id.</summary>
    string StepId { get; }

    /// <summary>1 on the first try.</summary>
    int Attempt { get; }

    /// <summary>Outputs of the steps this one needs, by step id.</summary>
    IReadOnlyDictionary<string, StepInputData> Inputs { get; }

    /// <summary>The step's params as JSON ("{}" when it has none).</summary>
    string ParamsJson { get; }

    /// <summary>
    /// The values of the secrets the step names (StepSpec.secrets, <c>secrets:</c> in a pipeline file), by secret name.
    /// The agent masks them (as <c>***</c>) in logs, progress messages, the error and the output; anything else the
    /// handler does with a value is up to it.
    /// </summary>
    IReadOnlyDictionary<string, string> Secrets { get; }

    /// <summary>The last checkpoint an earlier attempt saved; null when there is none.</summary>
    ReadOnlyMemory<byte>? LastCheckpoint { get; }

    /// <summary>Fires on cancel, on the step's timeout and when the agent stops.</summary>
    CancellationToken CancellationToken { get; }

    /// <summary>The params deserialized (System.Text.Json, web defaults: camelCase, case-insensitive).</summary>
    T GetParams<T>();

    /// <summary>Reports progress 0-100 with an optional message.</summary>
    void ReportProgress(double percent, string? message = null);

    /// <summary>Saves a checkpoint (at most 1 MiB); a later attempt of the step receives it as <see cref="LastCheckpoint"/>.</summary>
    Task CheckpointAsync(ReadOnlyMemory<byte> data);

    /// <summary>Adds to the usage reported with the result, in budget units (e.g. "tokens", 300).</summary>
    void ReportUsage(string unit, double amount);

    /// <summary>Writes one line to the step's log.</summary>
    void Log(string line);
}
