using ControlPlane.Hosting;

namespace ControlPlane.Cli.Internal;

/// <summary>Where cpctl writes and what environment it reads; tests pass their own.</summary>
internal sealed class CliContext
{
    private readonly Func<string, string?> _getVariable;
    private readonly IReadOnlyDictionary<string, string>? _variables;

    public CliContext(TextWriter output, TextWriter error, Func<string, string?> getVariable)
    {
        Out = output;
        Error = error;
        _getVariable = getVariable;
    }

    public CliContext(TextWriter output, TextWriter error, IReadOnlyDictionary<string, string> variables)
        : this(output, error, name => variables.GetValueOrDefault(name))
    {
        _variables = variables;
    }

    public TextWriter Out { get; }

    public TextWriter Error { get; }

    /// <summary>Opens what cpctl reads as standard input (a secret's value for <c>cpctl secret set</c>); tests give their own.</summary>
    public Func<Stream> OpenInput { get; init; } = Console.OpenStandardInput;

    public static CliContext FromConsole() => new(Console.Out, Console.Error, DaemonContext.ProcessEnvironment());

    public string? Variable(string name)
    {
        var value = _getVariable(name);
        return string.IsNullOrWhiteSpace(value) ? null : value;
    }

    /// <summary>
    /// What a daemon run by cpctl reads: this context's writers and its environment (with only a lookup function, the
    /// variables <paramref name="names"/> lists), and cpctl's own directory for the deprecated appsettings.json.
    /// </summary>
    public DaemonContext ForDaemon(string programName, IEnumerable<string> names)
    {
        var environment = _variables ?? names
            .Select(name => (Name: name, Value: _getVariable(name)))
            .Where(v => v.Value is not null)
            .ToDictionary(v => v.Name, v => v.Value!, StringComparer.Ordinal);
        return new DaemonContext(programName, Out, Error, environment, AppContext.BaseDirectory);
    }
}
