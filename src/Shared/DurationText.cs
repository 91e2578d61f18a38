using System.Globalization;

namespace ControlPlane.Internal;

/// <summary>
/// Durations written as in Go and most CI tools: <c>500ms</c>, <c>30s</c>, <c>10m</c>, <c>1h30m</c>, <c>1.5h</c>, with
/// units from largest to smallest, each at most once. Linked as source into the pipeline-file reader and the daemons'
/// settings, so both read a duration the same way.
/// </summary>
internal static class DurationText
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        var total = 0m;
        var lastRank = int.MaxValue;
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
            {
                i++;
            }

            if (i == start || !decimal.TryParse(text.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount))
            {
                return false;
            }

            var unitStart = i;
            while (i < text.Length && char.IsAsciiLetterLower(text[i]))
            {
                i++;
            }

            var (rank, unitMs) = text.AsSpan(unitStart, i - unitStart) switch
            {
                "h" => (3, 3_600_000m),
                "m" => (2, 60_000m),
                "s" => (1, 1_000m),
                "ms" => (0, 1m),
                _ => (-1, 0m),
            };

            // "30m1h" and "1h1h" are typos more often than intent.
            if (rank < 0 || rank >= lastRank)
            {
                return false;
            }

            lastRank = rank;
            total += amount * unitMs;
            if (total > (decimal)TimeSpan.MaxValue.TotalMilliseconds / 2)
            {
                return false;
            }
        }

        value = TimeSpan.FromTicks((long)(total * TimeSpan.TicksPerMillisecond));
        return true;
    }
}
