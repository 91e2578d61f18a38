using System.Text.RegularExpressions;

namespace ControlPlane.Scheduler.Security;

/// <summary>An agent token's agent id: an exact id, or a prefix ending in "*" ("gpu-*"); no other wildcards.</summary>
public static partial class AgentIdPattern
{
    /// <summary>Longest pattern, in characters.</summary>
    public const int MaxLength = 64;

    /// <summary>Whether <paramref name="pattern"/> is an agent id, or an agent id prefix followed by one trailing "*".</summary>
    public static bool IsValid(string pattern) => pattern.Length <= MaxLength && Shape().IsMatch(pattern);

    /// <summary>Whether <paramref name="agentId"/> is one <paramref name="pattern"/> names; an empty pattern names every id.</summary>
    public static bool Matches(string? pattern, string agentId)
    {
        ArgumentNullException.ThrowIfNull(agentId);
        if (string.IsNullOrEmpty(pattern))
        {
            return true;
        }

        return pattern.EndsWith('*')
            ? agentId.StartsWith(pattern.AsSpan(0, pattern.Length - 1), StringComparison.Ordinal)
            : agentId.Equals(pattern, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^([a-z0-9][a-z0-9._-]{0,62}\*?|\*)$", RegexOptions.CultureInvariant)]
    private static partial Regex Shape();
}
