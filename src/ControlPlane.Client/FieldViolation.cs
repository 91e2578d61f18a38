using System.Text.RegularExpressions;

namespace ControlPlane.Client;

/// <summary>
/// One rule a submitted RunSpec broke, as the scheduler reports it in an INVALID_ARGUMENT status:
/// the detail lists violations as <c>field: description</c> joined by "; ".
/// </summary>
/// <param name="Field">Field path such as <c>steps[3].needs[0]</c>; empty when the detail named none.</param>
/// <param name="Description">What is wrong.</param>
public sealed partial record FieldViolation(string Field, string Description)
{
    /// <summary>Splits a status detail into its violations; text that names no field path becomes one violation with an empty field.</summary>
    public static IReadOnlyList<FieldViolation> Parse(string? detail)
    {
        var violations = new List<FieldViolation>();
        if (string.IsNullOrWhiteSpace(detail))
        {
            return violations;
        }

        foreach (var piece in detail.Split("; "))
        {
            var match = FieldPrefix().Match(piece);
            if (match.Success)
            {
                violations.Add(new FieldViolation(match.Groups["field"].Value, match.Groups["text"].Value));
            }
            else if (violations.Count > 0 && violations[^1].Field.Length > 0 && !LeadingPrefix().IsMatch(piece))
            {
                // A description that itself contained "; " was split; glue it back together.
                violations[^1] = violations[^1] with { Description = violations[^1].Description + "; " + piece };
            }
            else
            {
                violations.Add(new FieldViolation(string.Empty, piece));
            }
        }

        return violations;
    }

    /// <inheritdoc />
    public override string ToString() => Field.Length == 0 ? Description : $"{Field}: {Description}";

    // An optional leading sentence ("invalid run spec: ") followed by a field path and ": ".
    [GeneratedRegex(@"^(?:[^:;]*?\s[^:;]*?:\s)?(?<field>[a-z_][a-z0-9_]*(?:\[[^\]]*\])*(?:\.[a-z_][a-z0-9_]*(?:\[[^\]]*\])*)*): (?<text>.*)$", RegexOptions.Singleline | RegexOptions.CultureInvariant)]
    private static partial Regex FieldPrefix();

    [GeneratedRegex(@"^[^\s:]+: ", RegexOptions.CultureInvariant)]
    private static partial Regex LeadingPrefix();
}
