namespace ControlPlane.Client;

/// <summary>
/// One rule a request broke, as the scheduler reports it in an INVALID_ARGUMENT status: a
/// google.rpc.BadRequest field violation (see <see cref="RpcExceptionDetails.GetFieldViolations"/>).
/// </summary>
/// <param name="Field">Field path such as <c>steps[3].needs[0]</c>; empty when the violation concerns the request as a whole.</param>
/// <param name="Description">What is wrong and how to fix it.</param>
public sealed record FieldViolation(string Field, string Description)
{
    /// <inheritdoc />
    public override string ToString() => Field.Length == 0 ? Description : $"{Field}: {Description}";
}
