using ControlPlane.Internal;
using System.Globalization;

namespace ControlPlane.Hosting;

/// <summary>Durations as both daemons read them: 500ms, 30s, 5m, 1h, 1h30m, or a TimeSpan such as 00:00:30.</summary>
public static partial class DaemonDuration
{
    /// <summary>The examples every "not a duration" message shows.</summary>
    public const string Examples = "500ms, 30s, 5m, 1h30m or 00:00:30";

    /// <summary>Parses <paramref name="text"/>; units go from largest to smallest (1h30m, not 30m1h), each at most once.</summary>
    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        var trimmed = text?.Trim() ?? string.Empty;
        if (trimmed.Length == 0)
        {
            return false;
        }

        // A bare number is refused: "30" could mean seconds or (to TimeSpan) days.
        if (trimmed.Contains(':', StringComparison.Ordinal))
        {
            return TimeSpan.TryParse(trimmed, CultureInfo.InvariantCulture, out value);
        }

        return DurationText.TryParse(trimmed, out value);
    }

    /// <summary>Writes <paramref name="value"/> the short way: 30s, 5m, 1h30m, 500ms.</summary>
    public static string Format(TimeSpan value)
    {
        if (value == TimeSpan.Zero)
        {
            return "0s";
        }

        if (value.Ticks % TimeSpan.TicksPerMillisecond != 0 || value < TimeSpan.Zero)
        {
            return value.ToString("c", CultureInfo.InvariantCulture);
        }

        var text = string.Empty;
        var hours = (long)value.TotalHours;
        if (hours > 0)
        {
            text += hours.ToString(CultureInfo.InvariantCulture) + "h";
        }

        if (value.Minutes > 0)
        {
            text += value.Minutes.ToString(CultureInfo.InvariantCulture) + "m";
        }

        if (value.Seconds > 0)
        {
            text += value.Seconds.ToString(CultureInfo.InvariantCulture) + "s";
        }

        if (value.Milliseconds > 0)
        {
            text += value.Milliseconds.ToString(CultureInfo.InvariantCulture) + "ms";
        }

        return text;
    }
}
