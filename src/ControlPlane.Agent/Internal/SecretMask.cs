using System.Text;

namespace ControlPlane.Agent.Internal;

/// <summary>
/// Replaces every secret value of an attempt with <c>***</c> in what leaves the host: log lines, progress messages, the
/// error and the output. Each line of a multi-line value is masked on its own too, as logs travel a line at a time. A
/// value split across two log lines, or encoded (base64, URL escaping), is not recognised: masking catches accidents,
/// it is not access control.
/// </summary>
internal sealed class SecretMask
{
    /// <summary>What a secret value is replaced with.</summary>
    public const string Mask = "***";

    /// <summary>A mask with nothing to hide.</summary>
    public static readonly SecretMask None = new([]);

    private static readonly byte[] MaskBytes = Encoding.UTF8.GetBytes(Mask);

    // Longest first, so a value that contains another is masked whole.
    private readonly string[] _values;
    private readonly byte[][] _bytes;

    public SecretMask(IEnumerable<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var all = new HashSet<string>(StringComparer.Ordinal);
        foreach (var value in values)
        {
            if (value.Length == 0)
            {
                continue;
            }

            all.Add(value);
            foreach (var line in value.Split('\n'))
            {
                var trimmed = line.TrimEnd('\r');
                if (trimmed.Trim().Length > 0)
                {
                    all.Add(trimmed);
                }
            }
        }

        _values = [.. all.OrderByDescending(v => v.Length).ThenBy(v => v, StringComparer.Ordinal)];
        _bytes = [.. _values.Select(Encoding.UTF8.GetBytes)];
    }

    /// <summary>Whether there is anything to mask.</summary>
    public bool IsEmpty => _values.Length == 0;

    /// <summary><paramref name="text"/> with every secret value replaced by <c>***</c>.</summary>
    public string Apply(string text)
    {
        if (_values.Length == 0 || string.IsNullOrEmpty(text))
        {
            return text;
        }

        foreach (var value in _values)
        {
            if (text.Contains(value, StringComparison.Ordinal))
            {
                text = text.Replace(value, Mask, StringComparison.Ordinal);
            }
        }

        return text;
    }

    /// <summary><paramref name="text"/> masked; null stays null.</summary>
    public string? ApplyOrNull(string? text) => text is null ? null : Apply(text);

    /// <summary>
    /// <paramref name="data"/> with every occurrence of a secret value's UTF-8 bytes replaced by <c>***</c>; the same
    /// memory when none occurs. An output is masked byte-wise whatever its type: a secret must not be stored as one.
    /// </summary>
    public ReadOnlyMemory<byte> Apply(ReadOnlyMemory<byte> data)
    {
        if (_bytes.Length == 0 || data.IsEmpty)
        {
            return data;
        }

        var current = data;
        foreach (var value in _bytes)
        {
            if (current.Span.IndexOf(value) < 0)
            {
                continue;
            }

            var result = new List<byte>(current.Length);
            var rest = current.Span;
            int at;
            while ((at = rest.IndexOf(value)) >= 0)
            {
                result.AddRange(rest[..at]);
                result.AddRange(MaskBytes);
                rest = rest[(at + value.Length)..];
            }

            result.AddRange(rest);
            current = result.ToArray();
        }

        return current;
    }

    /// <summary>
    /// The environment variable a shell step gets a secret as: the name upper-cased, '-' and '.' as '_'
    /// (db-password is DB_PASSWORD, api.key is API_KEY).
    /// </summary>
    public static string VariableName(string secretName)
    {
        ArgumentNullException.ThrowIfNull(secretName);
        return secretName.ToUpperInvariant().Replace('-', '_').Replace('.', '_');
    }
}
