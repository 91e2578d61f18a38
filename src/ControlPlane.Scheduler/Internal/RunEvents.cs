using ControlPlane.V1;
using Google.Protobuf.Collections;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// Builds the RunEvents and StateTransitions both stores append, so an event or history entry
/// looks the same whichever store wrote it. The caller assigns <c>seq</c> (1, 2, 3... per run).
/// </summary>
internal static class RunEvents
{
    public static RunEvent RunStateChanged(string runId, long seq, DateTimeOffset time, RunState from, RunState to, string reason) =>
        new()
        {
            RunId = runId,
            Seq = seq,
            Time = Timestamp.FromDateTimeOffset(time),
            RunStateChanged = new RunStateChanged { FromState = from, ToState = to, Reason = reason },
        };

    public static RunEvent StepStateChanged(
        string runId, long seq, DateTimeOffset time, string stepId, StepState from, StepState to, int attempt, string reason, string agentId) =>
        new()
        {
            RunId = runId,
            Seq = seq,
            Time = Timestamp.FromDateTimeOffset(time),
            StepStateChanged = new StepStateChanged
            {
                StepId = stepId, FromState = from, ToState = to, Attempt = attempt, Reason = reason, AgentId = agentId,
            },
        };

    public static RunEvent StepProgressed(string runId, long seq, DateTimeOffset time, string stepId, int attempt, double percent, string message) =>
        new()
        {
            RunId = runId,
            Seq = seq,
            Time = Timestamp.FromDateTimeOffset(time),
            StepProgressed = new StepProgressed { StepId = stepId, Attempt = attempt, Percent = percent, Message = message },
        };

    public static RunEvent StepCheckpointed(string runId, long seq, DateTimeOffset time, string stepId, int attempt, long size) =>
        new()
        {
            RunId = runId,
            Seq = seq,
            Time = Timestamp.FromDateTimeOffset(time),
            StepCheckpointed = new StepCheckpointed { StepId = stepId, Attempt = attempt, Size = size },
        };

    public static RunEvent StepLogged(string runId, long seq, DateTimeOffset time, string stepId, int attempt, LogStream stream, IEnumerable<string> lines)
    {
        var logged = new StepLogged { StepId = stepId, Attempt = attempt, Stream = stream };
        logged.Lines.AddRange(lines);
        return new RunEvent { RunId = runId, Seq = seq, Time = Timestamp.FromDateTimeOffset(time), StepLogged = logged };
    }

    public static RunEvent GateDecided(string runId, long seq, DateTimeOffset time, string stepId, bool approved, string decidedBy, string comment) =>
        new()
        {
            RunId = runId,
            Seq = seq,
            Time = Timestamp.FromDateTimeOffset(time),
            GateDecided = new GateDecided { StepId = stepId, Approved = approved, DecidedBy = decidedBy, Comment = comment },
        };

    /// <summary>A run history entry (attempt 0).</summary>
    public static StateTransition History(RunState from, RunState to, string reason, DateTimeOffset time) =>
        new()
        {
            FromState = StateNames.Of(from),
            ToState = StateNames.Of(to),
            Reason = reason,
            Time = Timestamp.FromDateTimeOffset(time),
        };

    /// <summary>A step history entry.</summary>
    public static StateTransition History(StepState from, StepState to, string reason, DateTimeOffset time, int attempt) =>
        new()
        {
            FromState = StateNames.Of(from),
            ToState = StateNames.Of(to),
            Reason = reason,
            Time = Timestamp.FromDateTimeOffset(time),
            Attempt = attempt,
        };

    /// <summary>Adds <paramref name="amounts"/> into <paramref name="totals"/>, unit by unit.</summary>
    public static void AddUnits(MapField<string, double> totals, IEnumerable<KeyValuePair<string, double>> amounts, double sign = 1)
    {
        foreach (var (unit, amount) in amounts)
        {
            // A total back at 0 (within rounding) is removed, as the Redis store does: "no tokens" reads the same as "0 tokens".
            totals.TryGetValue(unit, out var current);
            var total = current + (sign * amount);
            if (Math.Abs(total) < 1e-9)
            {
                totals.Remove(unit);
            }
            else
            {
                totals[unit] = total;
            }
        }
    }
}
