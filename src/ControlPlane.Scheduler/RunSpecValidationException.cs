namespace ControlPlane.Scheduler;

/// <summary>One broken rule of a RunSpec, at a field path such as <c>steps[3].needs[0]</c>.</summary>
public sealed record SpecViolation(string Field, string Description)
{
    public override string ToString() => $"{Field}: {Description}";
}

/// <summary>A RunSpec broke one or more rules; all of them are listed (INVALID_ARGUMENT).</summary>
public sealed class RunSpecValidationException : Exception
{
    public RunSpecValidationException(IReadOnlyList<SpecViolation> violations)
        : base("invalid run spec: " + string.Join("; ", violations))
    {
        Violations = violations;
    }

    public IReadOnlyList<SpecViolation> Violations { get; }
}
