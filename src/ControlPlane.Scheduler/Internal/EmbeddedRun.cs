using ControlPlane.V1;

namespace ControlPlane.Scheduler.Internal;

/// <summary>One run held by the embedded store: the Run message (without steps) plus the indexes the store needs.</summary>
internal sealed class EmbeddedRun
{
    public EmbeddedRun(Run run, long createdSeq)
    {
        Run = run;
        CreatedSeq = createdSeq;
    }

    /// <summary>The authoritative run message; its Steps field stays empty (steps live in <see cref="Steps"/>).</summary>
    public Run Run { get; }

    public RunSpec Spec => Run.Spec;

    public long CreatedSeq { get; }

    public EmbeddedStep[] Steps { get; set; } = [];

    /// <summary>How long the run is kept once finished, fixed at submit (its spec's, else the store default); zero keeps it forever.</summary>
    public TimeSpan Retention { get; init; }

    /// <summary>The run's trace context kept at submit (a W3C traceparent), every attempt span's parent; empty for none.</summary>
    public string TraceParent { get; init; } = string.Empty;

    /// <summary>When maintenance deletes the finished run; null while it runs or when it is kept forever.</summary>
    public DateTimeOffset? ExpiresAt { get; set; }

    public Dictionary<string, int> IndexById { get; } = new(StringComparer.Ordinal);

    public List<RunEvent> Events { get; } = [];

    /// <summary>Attempts ASSIGNED or RUNNING: what the run cap counts.</summary>
    public int Active { get; set; }

    /// <summary>Steps not yet SUCCEEDED, FAILED, CANCELLED or SKIPPED.</summary>
    public int Unfinished { get; set; }

    /// <summary>READY steps per queue, best first.</summary>
    public Dictionary<string, SortedSet<EmbeddedStep>> Ready { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// A claim found the run at its cap and took it off the rotations; the next attempt that ends puts it back (at the
    /// end), as the Redis store's _cb flag does.
    /// </summary>
    public bool CapBlocked { get; set; }

    /// <summary>This run's place in each queue's round-robin rotation while it has READY steps there.</summary>
    public Dictionary<string, LinkedListNode<EmbeddedRun>> RotationNodes { get; } = new(StringComparer.Ordinal);
}
