using ControlPlane.V1;

namespace ControlPlane.Agent;

/// <summary>Everything a compute framework needs to run one attempt.</summary>
/// <param name="RunId">The run the step belongs to.</param>
/// <param name="StepId">The step's id.</param>
/// <param name="Attempt">1 on the first try.</param>
/// <param name="FencingToken">Identifies this attempt in every report.</param>
/// <param name="Spec">The step's spec (command, handler, params, timeout...).</param>
/// <param name="Inputs">Outputs of the steps this one needs, by step id.</param>
/// <param name="Checkpoint">The last checkpoint of an earlier attempt; null when there is none.</param>
/// <param name="Directory">This attempt's own directory, not yet created; a framework that needs one creates it and lays out what it needs inside.</param>
public sealed record StepExecution(
    string RunId,
    string StepId,
    int Attempt,
    long FencingToken,
    StepSpec Spec,
    IReadOnlyDictionary<string, StepInputData> Inputs,
    ReadOnlyMemory<byte>? Checkpoint,
    string Directory)
{
    /// <summary>The step's timeout; null when it has none.</summary>
    public TimeSpan? Timeout => Spec.Timeout is { } t && t.ToTimeSpan() > TimeSpan.Zero ? t.ToTimeSpan() : null;

    /// <summary>
    /// The lease the scheduler gave (Welcome.lease_duration); null before the agent knows it. A framework that runs
    /// the step outside the agent's process ends it when the agent stops answering for about half of it, so a frozen
    /// agent's step does not run beside the attempt that replaces it.
    /// </summary>
    public TimeSpan? LeaseDuration { get; init; }

    /// <summary>
    /// The values of the secrets the step names (StepSpec.secrets), by secret name. A shell step gets each as an
    /// environment variable (db-password as DB_PASSWORD); a dotnet step reads them from IStepContext.Secrets.
    /// </summary>
    public IReadOnlyDictionary<string, string> Secrets { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// The W3C trace context (traceparent) of the agent's execution span of this attempt, or of the scheduler's span when
    /// the agent records none; empty when the scheduler sent none. A shell step gets it as TRACEPARENT, so its own tools
    /// can continue the run's trace.
    /// </summary>
    public string TraceParent { get; init; } = string.Empty;

    /// <summary>The step's params as JSON ("{}" when it has none).</summary>
    public string ParamsJson => Spec.Params is null ? "{}" : Google.Protobuf.JsonFormatter.Default.Format(Spec.Params);
}
