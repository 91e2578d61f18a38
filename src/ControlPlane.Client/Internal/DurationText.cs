using System.Globalization;

namespace ControlPlane.Client.Internal;

/// <summary>Durations written as in Go and most CI tools: <c>500ms</c>, <c>2s</c>, <c>10m</c>, <c>1h30m</c>, <c>1.5h</c>.</summary>
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

            decimal unitMs;
            switch (text.AsSpan(unitStart, i - unitStart))
            {
                case "ms": unitMs = 1m; break;
                case "s": unitMs = 1_000m; break;
                case "m": unitMs = 60_000m; break;
                case "h": unitMs = 3_600_000m; break;
                default: return false;
            }

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
