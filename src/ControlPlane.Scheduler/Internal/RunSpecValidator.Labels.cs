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

    private static void ValidateLabels(RunSpec spec, Violations v) => CheckLabels(spec.Labels, "labels", v.Add);

    /// <summary>
    /// The violations of a label map outside a RunSpec (an agent's Hello, a ListRuns filter), each with its field path
    /// under <paramref name="field"/>, e.g. "hello.labels[team]"; empty when the labels are fine.
    /// </summary>
    public static IReadOnlyList<SpecViolation> LabelViolations(IReadOnlyDictionary<string, string> labels, string field)
    {
        var v = new Violations();
        CheckLabels(labels, field, v.Add);
        return v.Finish();
    }

    private static void CheckLabels(IReadOnlyDictionary<string, string> labels, string field, Action<string, string> add)
    {
        if (labels.Count > MaxLabels)
        {
            add(field, $"has {labels.Count} labels; at most {MaxLabels} are allowed");
            return;
        }

        foreach (var (key, value) in labels.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            var at = $"{field}[{Shorten(key)}]";
            if (!IsValidLabelKey(key))
            {
                add(at, $"key '{Shorten(key)}' {LabelKeyRule}");
            }

            if (value.Length > MaxLabelValueLength)
            {
                add(at, $"value is {value.Length} characters; at most {MaxLabelValueLength} are allowed");
            }
            else if (value.Any(char.IsControl))
            {
                add(at, "value holds a control character (newline, tab, ...); use printable text");
            }
        }
    }

    private static string Shorten(string text) => text.Length <= 64 ? text : text[..61] + "...";
}
