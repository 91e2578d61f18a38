using System.Diagnostics;
using ControlPlane.Scheduler.Internal;
using ControlPlane.V1;

namespace ControlPlane.Scheduler.Services;

/// <summary>
/// The spans of the attempts one agent stream was sent, by fencing token: each starts at the assignment as a child of
/// the run's trace context and ends when the stream records the attempt's result, or as an error when the attempt is
/// lost (refused as stale, revoked) or the stream ends first. The assignment carries the span's context, so the agent's
/// execution span is its child.
/// </summary>
internal sealed class AttemptSpans(string agentId)
{
    /// <summary>The most spans open on one stream; beyond it an attempt gets none (its assignment keeps the run's context).</summary>
    public const int MaxOpen = 4096;

    /// <summary>The longest error text kept as a span's status description.</summary>
    private const int MaxDescription = 256;

    private readonly Dictionary<long, Activity> _open = [];
    private readonly Lock _gate = new();

    /// <summary>Starts the attempt's span and puts its context in <see cref="Assignment.Traceparent"/>; without a listener, changes nothing.</summary>
    public void Start(Assignment assignment)
    {
        if (!SchedulerTracing.Source.HasListeners())
        {
            return;
        }

        lock (_gate)
        {
            if (_open.Count >= MaxOpen || _open.ContainsKey(assignment.FencingToken))
            {
                return;
            }
        }

        _ = ActivityContext.TryParse(assignment.Traceparent, null, isRemote: true, out var parent);
        var outer = Activity.Current;
        Activity? span;
        try
        {
            // Not a child of whatever is current here (the agent's Connect call): a run without a context gets a trace of its own.
            Activity.Current = null;
            span = SchedulerTracing.Source.StartActivity("step attempt", ActivityKind.Internal, parent);
        }
        finally
        {
            Activity.Current = outer;
        }

        if (span is null)
        {
            return;
        }

        span.SetTag("controlplane.run.id", assignment.RunId);
        span.SetTag("controlplane.step.id", assignment.StepId);
        span.SetTag("controlplane.attempt", assignment.Attempt);
        span.SetTag("controlplane.agent.id", agentId);
        span.SetTag("controlplane.queue", assignment.Spec?.Queue ?? string.Empty);
        span.SetTag("controlplane.fencing_token", assignment.FencingToken);
        assignment.Traceparent = span.Id!;
        lock (_gate)
        {
            _open[assignment.FencingToken] = span;
        }
    }

    /// <summary>The attempt's result was recorded (or refused) on this stream.</summary>
    public void End(long fencingToken, ConnectRequest report, ReportOutcome? outcome, string? error)
    {
        switch (outcome)
        {
            case ReportOutcome.Accepted or ReportOutcome.AlreadyApplied:
                switch (report.MessageCase)
                {
                    case ConnectRequest.MessageOneofCase.StepCompleted:
                        End(fencingToken, "succeeded", null);
                        break;
                    case ConnectRequest.MessageOneofCase.StepFailed:
                        End(fencingToken, "failed", report.StepFailed.Error);
                        break;
                    case ConnectRequest.MessageOneofCase.StepDeclined:
                        End(fencingToken, "declined", null);
                        break;
                }

                break;
            case ReportOutcome.StaleToken or ReportOutcome.NotOwner:
                End(fencingToken, "lease_lost", "the attempt lost its lease or belongs to another agent session; its report was refused");
                break;
            case ReportOutcome.UnknownAttempt:
                End(fencingToken, "lease_lost", "the run or step no longer exists; the attempt's report was refused");
                break;
            default:
                End(fencingToken, "error", error ?? "the attempt's report could not be recorded");
                break;
        }
    }

    /// <summary>Ends the attempt's span with <paramref name="outcome"/>; an <paramref name="error"/> marks it failed.</summary>
    public void End(long fencingToken, string outcome, string? error)
    {
        Activity? span;
        lock (_gate)
        {
            if (!_open.Remove(fencingToken, out span))
            {
                return;
            }
        }

        Finish(span, outcome, error);
    }

    /// <summary>The stream ended: every attempt still open here ends as abandoned on it (a reconnect may carry it on).</summary>
    public void EndAll(string reason)
    {
        List<Activity> open;
        lock (_gate)
        {
            open = [.. _open.Values];
            _open.Clear();
        }

        foreach (var span in open)
        {
            Finish(span, "abandoned", reason);
        }
    }

    private static void Finish(Activity span, string outcome, string? error)
    {
        span.SetTag("controlplane.outcome", outcome);
        if (error is not null)
        {
            span.SetStatus(ActivityStatusCode.Error, error.Length > MaxDescription ? error[..MaxDescription] : error);
        }

        span.Stop();
    }
}
