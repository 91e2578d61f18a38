namespace ControlPlane.Agent;

/// <summary>How an attempt ended: succeeded with an output, or failed with an error.</summary>
public sealed record StepResult
{
    /// <summary>True when the attempt succeeded.</summary>
    public bool Succeeded { get; init; }

    /// <summary>Inline output of a successful attempt (at most 1 MiB).</summary>
    public ReadOnlyMemory<byte> Output { get; init; }

    /// <summary>Reference to the output when it is not inline.</summary>
    public string? OutputUri { get; init; }

    /// <summary>Actual usage in budget units.</summary>
    public IReadOnlyDictionary<string, double> Usage { get; init; } = new Dictionary<string, double>();

    /// <summary>Why the attempt failed; null on success.</summary>
    public string? Error { get; init; }

    /// <summary>Retrying cannot help.</summary>
    public bool Permanent { get; init; }

    /// <summary>The attempt ran past its timeout and was stopped.</summary>
    public bool TimedOut { get; init; }

    /// <summary>The attempt was stopped because it was cancelled.</summary>
    public bool Cancelled { get; init; }

    /// <summary>A successful result.</summary>
    public static StepResult Success(ReadOnlyMemory<byte> output, IReadOnlyDictionary<string, double>? usage = null, string? outputUri = null) =>
        new() { Succeeded = true, Output = output, OutputUri = outputUri, Usage = usage ?? new Dictionary<string, double>() };

    /// <summary>A failed result.</summary>
    public static StepResult Failure(string error, bool permanent = false, bool timedOut = false, bool cancelled = false, IReadOnlyDictionary<string, double>? usage = null) =>
        new() { Error = error, Permanent = permanent, TimedOut = timedOut, Cancelled = cancelled, Usage = usage ?? new Dictionary<string, double>() };
}
