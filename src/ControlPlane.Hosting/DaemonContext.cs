using System.Collections;

namespace ControlPlane.Hosting;

/// <summary>
/// What a daemon reads and writes besides its flags: its name in messages, stdout (the lines scripts wait for), stderr
/// (errors, warnings, logs), the environment, and the directory of the executable (where the deprecated appsettings.json is).
/// </summary>
public sealed record DaemonContext(
    string ProgramName,
    TextWriter Out,
    TextWriter Error,
    IReadOnlyDictionary<string, string> Environment,
    string BaseDirectory)
{
    /// <summary>The process's own console, environment and executable directory.</summary>
    public static DaemonContext FromProcess(string programName) =>
        new(programName, Console.Out, Console.Error, ProcessEnvironment(), AppContext.BaseDirectory);

    /// <summary>A snapshot of this process's environment variables.</summary>
    public static IReadOnlyDictionary<string, string> ProcessEnvironment()
    {
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in System.Environment.GetEnvironmentVariables())
        {
            if (entry.Key is string name && entry.Value is string value)
            {
                variables[name] = value;
            }
        }

        return variables;
    }
}
