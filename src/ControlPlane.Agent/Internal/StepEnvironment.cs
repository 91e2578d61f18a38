using System.Collections;
using System.Text.RegularExpressions;

namespace ControlPlane.Agent.Internal;

/// <summary>
/// What a shell step inherits from the agent's environment: PATH, HOME, LANG and TZ when the agent has them, and the
/// names the agent is told to pass (--pass-env; a trailing '*' matches a prefix). Never a CP_ variable: those are the
/// agent's own settings and its token, and the step contract's variables are set by the framework itself.
/// </summary>
internal static partial class StepEnvironment
{
    /// <summary>Most names --pass-env may list.</summary>
    public const int MaxPassNames = 64;

    /// <summary>Variables every step gets from the agent's environment when set there.</summary>
    public static readonly string[] BaseNames = ["PATH", "HOME", "LANG", "TZ"];

    private const string ReservedPrefix = "CP_";

    /// <summary>The problem with one --pass-env entry, or null when it is a valid name or prefix glob.</summary>
    public static string? Problem(string? name)
    {
        if (string.IsNullOrEmpty(name) || !NamePattern().IsMatch(name))
        {
            return $"PassEnv entry '{name}' is not a variable name; use letters, digits and '_' (not starting with a digit), optionally ending in '*' to match a prefix, e.g. AWS_*.";
        }

        if (name.StartsWith(ReservedPrefix, StringComparison.OrdinalIgnoreCase))
        {
            return $"PassEnv entry '{name}' names a CP_ variable: those are the agent's own settings and token (CP_TOKEN) and never pass to steps; give steps what they need under another name.";
        }

        return null;
    }

    /// <summary>The agent's variables a step inherits, from <paramref name="agent"/> by the base names and <paramref name="pass"/>.</summary>
    public static IEnumerable<KeyValuePair<string, string>> Select(IReadOnlyDictionary<string, string> agent, IReadOnlyCollection<string> pass)
    {
        foreach (var (name, value) in agent)
        {
            if (!name.StartsWith(ReservedPrefix, StringComparison.OrdinalIgnoreCase) && (BaseNames.Contains(name, StringComparer.Ordinal) || pass.Any(p => Matches(p, name))))
            {
                yield return new(name, value);
            }
        }
    }

    /// <summary>This process's environment.</summary>
    public static IReadOnlyDictionary<string, string> Process()
    {
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            variables[(string)entry.Key] = entry.Value as string ?? string.Empty;
        }

        return variables;
    }

    private static bool Matches(string pattern, string name) =>
        pattern.EndsWith('*') ? name.StartsWith(pattern[..^1], StringComparison.Ordinal) : name.Equals(pattern, StringComparison.Ordinal);

    // A name, or a prefix of at least one character followed by '*': a lone '*' would pass the whole environment.
    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,127}\\*?$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();
}
