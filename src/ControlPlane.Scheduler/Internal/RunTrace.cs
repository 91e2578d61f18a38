using System.Diagnostics;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// A run's trace context: the W3C <c>traceparent</c> ("00-&lt;trace id&gt;-&lt;span id&gt;-&lt;flags&gt;") kept with the run at
/// submit, the parent of every attempt's span. One rule for both stores, so they accept and return the same values.
/// </summary>
internal static class RunTrace
{
    /// <summary>The length of a version-00 traceparent, the only form kept.</summary>
    public const int TraceParentLength = 55;

    /// <summary>
    /// The context a run submitted now belongs to: the current activity's (the SubmitRun server span, which joined the
    /// caller's trace when it sent <c>traceparent</c>), or a new trace when there is none or it is not in W3C form.
    /// </summary>
    public static string ForSubmit()
    {
        if (Activity.Current is { IdFormat: ActivityIdFormat.W3C } current)
        {
            // A caller's sampling decision travels on; a trace that starts here is recorded whether or not this replica
            // exports (ASP.NET Core makes its request activity unsampled when nothing listens), so agents and the
            // step's own tools that export keep their spans.
            var root = current;
            while (root.Parent is { } parent)
            {
                root = parent;
            }

            // The outermost activity has a parent id but no parent object only when its parent came from outside.
            return root.HasRemoteParent || root.ParentId is not null
                ? current.Id!
                : new ActivityContext(current.TraceId, current.SpanId, current.ActivityTraceFlags | ActivityTraceFlags.Recorded).ToTraceParent();
        }

        // Recorded: a trace started here has no caller that decided against sampling it.
        return new ActivityContext(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded).ToTraceParent();
    }

    /// <summary>The value a store keeps: empty for none; throws <see cref="ArgumentException"/> unless it is a version-00 traceparent.</summary>
    public static string Check(string? traceParent)
    {
        if (string.IsNullOrEmpty(traceParent))
        {
            return string.Empty;
        }

        if (traceParent.Length != TraceParentLength || !traceParent.StartsWith("00-", StringComparison.Ordinal)
            || !ActivityContext.TryParse(traceParent, null, out _))
        {
            throw new ArgumentException(
                $"traceParent '{(traceParent.Length > 80 ? traceParent[..80] + "..." : traceParent)}' is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)",
                nameof(traceParent));
        }

        return traceParent;
    }

    /// <summary>The trace id (32 hex digits) of a kept traceparent; empty for none.</summary>
    public static string TraceIdOf(string? traceParent) =>
        string.IsNullOrEmpty(traceParent) || traceParent.Length != TraceParentLength ? string.Empty : traceParent.Substring(3, 32);

    /// <summary>The context in its W3C text form.</summary>
    public static string ToTraceParent(this ActivityContext context) =>
        $"00-{context.TraceId.ToHexString()}-{context.SpanId.ToHexString()}-{((context.TraceFlags & ActivityTraceFlags.Recorded) != 0 ? "01" : "00")}";
}
