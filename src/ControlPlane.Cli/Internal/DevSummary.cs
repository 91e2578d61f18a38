using System.Globalization;
using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Cli.Internal;

/// <summary>The figures of a finished dev run, shared by the plain and the live summary.</summary>
internal static class DevSummary
{
    public static readonly string[] Headers = ["STEP", "STATE", "ATTEMPTS", "DURATION", "OUTPUT", "DETAIL"];

    /// <summary>One row per step, in spec order, with the cells of <see cref="Headers"/>.</summary>
    public static IReadOnlyList<string[]> Rows(Run run) => run.Steps.Select(step => new[]
    {
        step.Id,
        TextRender.Name(step.State),
        step.Attempt == 0 ? "-" : step.Attempt.ToString(CultureInfo.InvariantCulture),
        Duration(step.StartedAt, step.FinishedAt),
        Size(step),
        TextRender.StepDetail(step),
    }).ToList();

    public static string Duration(Timestamp? started, Timestamp? finished) =>
        started is null || finished is null ? "-" : Duration(finished.ToDateTime() - started.ToDateTime());

    public static string Duration(TimeSpan value) =>
        value.TotalHours >= 1 ? $"{(int)value.TotalHours}h{value.Minutes}m{value.Seconds}s"
        : value.TotalMinutes >= 1 ? $"{value.Minutes}m{value.Seconds}s"
        : value.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + "s";

    /// <summary>"18 B", "3.2 KiB"; "(dropped)" marks an intermediate output removed once every consumer succeeded.</summary>
    private static string Size(Step step)
    {
        if (step.OutputSize <= 0)
        {
            return "-";
        }

        var size = step.OutputSize switch
        {
            < 1024 => $"{step.OutputSize} B",
            < 1024 * 1024 => (step.OutputSize / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB",
            _ => (step.OutputSize / (1024.0 * 1024)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB",
        };
        return step.OutputDropped ? size + " (dropped)" : size;
    }
}
