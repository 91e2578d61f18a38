using System.Text.RegularExpressions;
using ControlPlane.V1;

namespace ControlPlane.Scheduler.Internal;

// Labels: a bounded number of short keys and values, since each pair is also an index entry in the store.
internal static partial class RunSpecValidator
{
    /// <summary>Most labels one run may carry.</summary>
    public const int MaxLabels = 64;

    /// <summary>Longest label value, in characters.</summary>
    public const int MaxLabelValueLength = 256;

    private const string LabelKeyRule = "must be 1 to 63 characters: letters, digits, '.', '_', '-' or '/', starting with a letter or digit";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex LabelKeyPattern();

    /// <summary>True when <paramref name="key"/> can be a label key.</summary>
    public static bool IsValidLabelKey(string key) => LabelKeyPattern().IsMatch(key);

    private static void ValidateLabels(RunSpec spec, Violations v)
    {
        if (spec.Labels.Count > MaxLabels)
        {
            v.Add("labels", $"has {spec.Labels.Count} labels; at most {MaxLabels} are allowed");
            return;
        }

        foreach (var (key, value) in spec.Labels.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            var field = $"labels[{Shorten(key)}]";
            if (!IsValidLabelKey(key))
            {
                v.Add(field, $"key '{Shorten(key)}' {LabelKeyRule}");
            }

            if (value.Length > MaxLabelValueLength)
            {
                v.Add(field, $"value is {value.Length} characters; at most {MaxLabelValueLength} are allowed");
            }
            else if (value.Any(char.IsControl))
            {
                v.Add(field, "value holds a control character (newline, tab, ...); use printable text");
            }
        }
    }

    private static string Shorten(string text) => text.Length <= 64 ? text : text[..61] + "...";
}
