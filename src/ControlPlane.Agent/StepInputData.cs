using System.Text;

namespace ControlPlane.Agent;

/// <summary>The output of an upstream step, given to the step that needs it.</summary>
/// <param name="StepId">The upstream step's id.</param>
/// <param name="Data">Its inline output (empty when it is only a reference).</param>
/// <param name="Uri">Reference to its output when it is not inline; null otherwise.</param>
/// <param name="Type">Media type of the output; null when the step declared none.</param>
public sealed record StepInputData(string StepId, ReadOnlyMemory<byte> Data, string? Uri = null, string? Type = null)
{
    /// <summary>The inline output decoded as UTF-8.</summary>
    public string GetString() => Encoding.UTF8.GetString(Data.Span);
}
