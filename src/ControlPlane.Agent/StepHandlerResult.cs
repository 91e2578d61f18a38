using System.Text;

namespace ControlPlane.Agent;

/// <summary>What a .NET step handler returns: an output, or a failure.</summary>
public sealed record StepHandlerResult
{
    /// <summary>True when the attempt succeeded.</summary>
    public bool Succeeded { get; private init; }

    /// <summary>Inline output (at most 1 MiB).</summary>
    public ReadOnlyMemory<byte> Output { get; private init; }

    /// <summary>Reference to the output when it is not inline.</summary>
    public string? OutputUri { get; private init; }

    /// <summary>Why it failed; null on success.</summary>
    public string? Error { get; private init; }

    /// <summary>Retrying cannot help.</summary>
    public bool Permanent { get; private init; }

    /// <summary>Success with no output.</summary>
    public static StepHandlerResult Empty { get; } = new() { Succeeded = true };

    /// <summary>Success with bytes as output.</summary>
    public static StepHandlerResult FromBytes(ReadOnlyMemory<byte> output) => new() { Succeeded = true, Output = output };

    /// <summary>Success with a UTF-8 string as output.</summary>
    public static StepHandlerResult FromString(string output) => FromBytes(Encoding.UTF8.GetBytes(output));

    /// <summary>Success with the output held elsewhere.</summary>
    public static StepHandlerResult FromUri(string uri) => new() { Succeeded = true, OutputUri = uri };

    /// <summary>A failure; permanent failures are not retried.</summary>
    public static StepHandlerResult Failure(string error, bool permanent = false) => new() { Error = error, Permanent = permanent };
}
