using ControlPlane.V1;
using Google.Protobuf;

namespace ControlPlane.Scheduler.Internal;

/// <summary>One step held by the embedded store: the Step message plus what is not shown to clients.</summary>
internal sealed class EmbeddedStep
{
    public EmbeddedStep(EmbeddedRun owner, int index, StepSpec spec, string queue)
    {
        Owner = owner;
        Index = index;
        Spec = spec;
        Queue = queue;
        Slots = StepDefaults.SlotsOf(spec);
        Step = new Step { Id = spec.Id, State = StepState.Blocked };
    }

    public EmbeddedRun Owner { get; }

    public int Index { get; }

    public StepSpec Spec { get; }

    public string Queue { get; }

    public int Slots { get; }

    public bool IsGate => StepDefaults.KindOf(Spec) == StepKind.Gate;

    /// <summary>The client-visible step (blocked_reason is filled in on read).</summary>
    public Step Step { get; }

    /// <summary>Indexes of the steps that need this one.</summary>
    public List<int> Children { get; } = [];

    public int[] Needs { get; set; } = [];

    /// <summary>Log lines of this step kept in the run's events (at most <see cref="ReportLimits.MaxLogLinesPerStep"/>).</summary>
    public int LogLinesKept { get; set; }

    /// <summary>Progress events of this step kept in the run's events (at most <see cref="ReportLimits.MaxProgressEventsPerStep"/>).</summary>
    public int ProgressEventsKept { get; set; }

    /// <summary>Fencing token of the current (or last) attempt; 0 before the first claim.</summary>
    public long Token { get; set; }

    /// <summary>The fencing token whose result (completed, failed, declined) was applied last: a repeat of it is a duplicate.</summary>
    public long ResultToken { get; set; }

    /// <summary>
    /// The agent session that holds the current attempt: the one that claimed it, or the newest that re-announced it.
    /// Empty when it was claimed without naming a session: then any session of its agent.
    /// </summary>
    public string Session { get; set; } = string.Empty;

    public DateTimeOffset LeaseExpiresAt { get; set; }

    public DateTimeOffset AssignedAt { get; set; }

    /// <summary>The run was cancelled while this attempt ran; its end makes the step CANCELLED.</summary>
    public bool CancelRequested { get; set; }

    public StepOutput? Output { get; set; }

    public ByteString? Checkpoint { get; set; }

    /// <summary>The attempt number at the last RetryRun: attempts are counted from here against the policy.</summary>
    public int AttemptBase { get; set; }

    public DateTimeOffset RetryDueAt { get; set; }

    /// <summary>Order in which the step became READY: FIFO among equal priorities.</summary>
    public long ReadySeq { get; set; }

    /// <summary>When the step last became READY; assignments carry it so the scheduler measures dispatch latency.</summary>
    public DateTimeOffset ReadyAt { get; set; }

    /// <summary>Budget units reserved for the current attempt.</summary>
    public Dictionary<string, double> Reserved { get; } = new(StringComparer.Ordinal);

    /// <summary>Attempts used since the last RetryRun.</summary>
    public int AttemptsUsed => Step.Attempt - AttemptBase;
}
