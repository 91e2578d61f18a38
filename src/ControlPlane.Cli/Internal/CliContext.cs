namespace ControlPlane.Cli.Internal;

/// <summary>Where cpctl writes and what environment it reads; tests pass their own.</summary>
internal sealed class CliContext
{
    private readonly Func<string, string?> getVariable;

    public CliContext(TextWriter output, TextWriter error, Func<string, string?> getVariable)
    {
        Out = output;
        Error = error;
        this.getVariable = getVariable;
    }

    public TextWriter Out { get; }

    public TextWriter Error { get; }

    public static CliContext FromConsole() => new(Console.Out, Console.Error, Environment.GetEnvironmentVariable);

    public string? Variable(string name)
    {
        var value = getVariable(name);
        return string.IsNullOrWhiteSpace(value) ? null : value;
    }
}
