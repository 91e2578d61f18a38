using System.Globalization;
using System.Text;
using ControlPlane.V1;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// What one agent report may carry. Applied where reports enter the scheduler and again by each store, so both
/// stores see the same input and nothing a step or an agent sends can make a store call fail or grow without bound:
/// progress is clamped to 0..100 (NaN reads 0); texts are cut with a marker and lone UTF-16 surrogates become
/// U+FFFD (they have no UTF-8 form); log lines are capped per report; usage amounts must be finite, between 0 and
/// <see cref="MaxAmount"/>, in valid unit names. A completion with unusable usage becomes a permanent failure that
/// names the amount, since its cost can not be reconciled; a failure keeps its flags and drops the unusable amounts
/// (they count at the step's estimate).
/// </summary>
internal static class ReportLimits
{
    /// <summary>Longest progress message or error kept, in characters.</summary>
    public const int MaxTextChars = 4096;

    /// <summary>Longest reason a StepDeclined keeps for the step's history, in characters.</summary>
    public const int MaxDeclineReasonChars = 1024;

    /// <summary>Longest output URI accepted, in characters.</summary>
    public const int MaxUriChars = 2048;

    /// <summary>Most log lines one report keeps; the rest are replaced by one line that says how many were dropped.</summary>
    public const int MaxLogLines = 1000;

    /// <summary>Most log lines one step keeps in its run's events (over all its attempts); later lines are counted, not kept.</summary>
    public const int MaxLogLinesPerStep = 10_000;

    /// <summary>Most progress events one step keeps in its run's events; later progress still updates the step.</summary>
    public const int MaxProgressEventsPerStep = 1_000;

    /// <summary>The one log line appended where a step's log lines start being dropped.</summary>
    public const string LogTruncatedLine = "[log truncated: a step keeps its first 10000 log lines; Step.log_lines_dropped counts the rest]";

    /// <summary>The one log line appended where a step's progress events start being dropped.</summary>
    public const string ProgressTruncatedLine = "[progress truncated: a step keeps its first 1000 progress events; Step.progress_events_dropped counts the rest]";

    /// <summary>Longest log line kept, in characters.</summary>
    public const int MaxLogLineChars = 8192;

    /// <summary>Most usage units one report may name.</summary>
    public const int MaxUsageUnits = 32;

    /// <summary>Largest usage amount (and budget or estimate) in any unit: far beyond any real cost, far below where sums lose integers.</summary>
    public const double MaxAmount = 1e15;

    /// <summary><see cref="MaxAmount"/> as messages write it.</summary>
    public const string MaxAmountText = "1e15";

    /// <summary>The report within the limits: the same instance when it already is, else a changed copy.</summary>
    public static ConnectRequest Normalize(ConnectRequest message)
    {
        ArgumentNullException.ThrowIfNull(message);
        switch (message.MessageCase)
        {
            case ConnectRequest.MessageOneofCase.StepProgress:
            {
                var p = message.StepProgress;
                var percent = double.IsNaN(p.Percent) ? 0 : Math.Clamp(p.Percent, 0, 100);
                var text = Text(p.Message, MaxTextChars);
                if (percent.Equals(p.Percent) && ReferenceEquals(text, p.Message))
                {
                    return message;
                }

                return new ConnectRequest { StepProgress = new StepProgress { FencingToken = p.FencingToken, Percent = percent, Message = text } };
            }

            case ConnectRequest.MessageOneofCase.StepLog:
            {
                var log = message.StepLog;
                // A stream number this scheduler does not know reads as unspecified, in both stores alike.
                var stream = Enum.IsDefined(log.Stream) ? log.Stream : LogStream.Unspecified;
                var changed = log.Lines.Count > MaxLogLines || stream != log.Stream;
                var lines = new List<string>(Math.Min(log.Lines.Count, MaxLogLines + 1));
                foreach (var line in log.Lines.Take(MaxLogLines))
                {
                    var kept = Text(line, MaxLogLineChars);
                    changed |= !ReferenceEquals(kept, line);
                    lines.Add(kept);
                }

                if (!changed)
                {
                    return message;
                }

                if (log.Lines.Count > MaxLogLines)
                {
                    lines.Add(string.Create(CultureInfo.InvariantCulture, $"[{log.Lines.Count - MaxLogLines} lines dropped: a report carries at most {MaxLogLines} log lines]"));
                }

                return new ConnectRequest { StepLog = new StepLog { FencingToken = log.FencingToken, Stream = stream, Lines = { lines } } };
            }

            case ConnectRequest.MessageOneofCase.StepCompleted:
            {
                var completed = message.StepCompleted;
                var (usage, problem) = Usage(completed.Usage, "step_completed");
                if (problem is null && completed.OutputUri.Length > MaxUriChars)
                {
                    problem = string.Create(CultureInfo.InvariantCulture,
                        $"step_completed.output_uri is {completed.OutputUri.Length} characters; report a URI of at most {MaxUriChars}");
                }

                if (problem is null)
                {
                    return message;
                }

                // The result can not be accepted as it is: the step fails for good and says why.
                var failed = new StepFailed { FencingToken = completed.FencingToken, Error = problem, Permanent = true };
                failed.Usage.Add(usage);
                return new ConnectRequest { StepFailed = failed };
            }

            case ConnectRequest.MessageOneofCase.StepFailed:
            {
                var failed = message.StepFailed;
                var (usage, problem) = Usage(failed.Usage, "step_failed");
                var error = Text(problem is null ? failed.Error : $"{failed.Error}; {problem}", MaxTextChars);
                if (problem is null && ReferenceEquals(error, failed.Error))
                {
                    return message;
                }

                var copy = new StepFailed { FencingToken = failed.FencingToken, Error = error, Permanent = failed.Permanent, TimedOut = failed.TimedOut, Cancelled = failed.Cancelled };
                copy.Usage.Add(usage);
                return new ConnectRequest { StepFailed = copy };
            }

            case ConnectRequest.MessageOneofCase.StepDeclined:
            {
                var d = message.StepDeclined;
                var reason = Text(d.Reason, MaxDeclineReasonChars);
                return ReferenceEquals(reason, d.Reason)
                    ? message
                    : new ConnectRequest { StepDeclined = new StepDeclined { FencingToken = d.FencingToken, Reason = reason } };
            }

            default:
                return message;
        }
    }

    /// <summary>
    /// Refuses a batch in which a report carries no step report (an empty envelope, or Hello and the like) before any
    /// report of it is applied, so a caller's mistake never leaves half a batch applied.
    /// </summary>
    public static void ThrowIfNotStepReports(IReadOnlyList<AttemptReport> reports)
    {
        ArgumentNullException.ThrowIfNull(reports);
        for (var i = 0; i < reports.Count; i++)
        {
            var kind = reports[i].Report.MessageCase;
            if (kind is not (ConnectRequest.MessageOneofCase.StepStarted or ConnectRequest.MessageOneofCase.StepProgress
                or ConnectRequest.MessageOneofCase.StepCheckpoint or ConnectRequest.MessageOneofCase.StepLog
                or ConnectRequest.MessageOneofCase.StepCompleted or ConnectRequest.MessageOneofCase.StepFailed
                or ConnectRequest.MessageOneofCase.StepDeclined))
            {
                throw RunStoreException.Invalid($"reports[{i}]",
                    $"report for step '{reports[i].Attempt.StepId}' carries {kind}; send one of StepStarted, StepProgress, StepCheckpoint, StepLog, StepCompleted, StepFailed, StepDeclined");
            }
        }
    }

    /// <summary>The amounts that can be kept, and what is wrong with the first one that can not (null when all can).</summary>
    private static (Dictionary<string, double> Kept, string? Problem) Usage(IDictionary<string, double> usage, string field)
    {
        var kept = new Dictionary<string, double>(StringComparer.Ordinal);
        string? problem = null;
        foreach (var (unit, amount) in usage)
        {
            string? wrong = null;
            if (!RunSpecValidator.IsValidName(unit))
            {
                wrong = $"{field}.usage[{Clip(unit)}] is not a unit name: use [a-z0-9][a-z0-9._-]{{0,62}} as in the run's budget";
            }
            else if (!IsAmount(amount))
            {
                wrong = $"{field}.usage[{unit}] is {amount.ToString(CultureInfo.InvariantCulture)}; report each amount as a finite number between 0 and {MaxAmountText}";
            }
            else if (kept.Count >= MaxUsageUnits)
            {
                wrong = string.Create(CultureInfo.InvariantCulture, $"{field}.usage names {usage.Count} units; report at most {MaxUsageUnits}");
            }
            else
            {
                kept[unit] = amount == 0 ? 0 : amount;
            }

            problem ??= wrong;
        }

        return (kept, problem);
    }

    /// <summary>A usage, budget or estimate amount the stores can add up exactly: finite, 0 or more, at most <see cref="MaxAmount"/>.</summary>
    public static bool IsAmount(double amount) => double.IsFinite(amount) && amount >= 0 && amount <= MaxAmount;

    /// <summary>
    /// <paramref name="text"/> with lone surrogates replaced and cut to <paramref name="max"/> characters plus a marker;
    /// the same instance when nothing changes.
    /// </summary>
    public static string Text(string text, int max)
    {
        var clean = WellFormed(text);
        if (clean.Length <= max)
        {
            return clean;
        }

        var cut = char.IsHighSurrogate(clean[max - 1]) ? max - 1 : max;
        return string.Create(CultureInfo.InvariantCulture, $"{clean.AsSpan(0, cut)}… [{clean.Length - cut} characters truncated]");
    }

    private static string WellFormed(string text)
    {
        var i = 0;
        for (; i < text.Length; i++)
        {
            if (char.IsSurrogate(text[i]) && !(char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])))
            {
                break;
            }

            if (char.IsHighSurrogate(text[i]))
            {
                i++;
            }
        }

        if (i == text.Length)
        {
            return text;
        }

        var sb = new StringBuilder(text.Length);
        for (var j = 0; j < text.Length; j++)
        {
            var c = text[j];
            if (char.IsHighSurrogate(c) && j + 1 < text.Length && char.IsLowSurrogate(text[j + 1]))
            {
                sb.Append(c).Append(text[++j]);
            }
            else
            {
                sb.Append(char.IsSurrogate(c) ? '\uFFFD' : c);
            }
        }

        return sb.ToString();
    }

    private static string Clip(string unit) => unit.Length <= 64 ? WellFormed(unit) : WellFormed(unit[..64]) + "…";
}
