using System.Text;

namespace ControlPlane.Hosting.Internal;

/// <summary>The one naming rule: setting SomeOption is flag --some-option and environment variable CP_SOME_OPTION.</summary>
internal static class SettingNames
{
    public const string EnvironmentPrefix = "CP_";

    /// <summary>What separates a setting from its nested key in flags and environment variables (--labels__team, CP_LABELS__TEAM).</summary>
    public const string NestedSeparator = "__";

    public static string Flag(string name) => "--" + Split(name, '-').ToLowerInvariant();

    public static string Environment(string name) => EnvironmentPrefix + Split(name, '_').ToUpperInvariant();

    // Word boundaries: lower or digit followed by upper (LeaseDuration), and the last capital of an acronym (TLSCert).
    private static string Split(string name, char separator)
    {
        var builder = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (i > 0 && char.IsUpper(c))
            {
                var previous = name[i - 1];
                var nextIsLower = i + 1 < name.Length && char.IsLower(name[i + 1]);
                if (char.IsLower(previous) || char.IsDigit(previous) || (char.IsUpper(previous) && nextIsLower))
                {
                    builder.Append(separator);
                }
            }

            builder.Append(c);
        }

        return builder.ToString();
    }
}
