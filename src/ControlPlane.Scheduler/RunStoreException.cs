using ControlPlane.V1;

namespace ControlPlane.Scheduler;

/// <summary>What went wrong in a store call, in terms a gRPC status maps onto.</summary>
public enum RunStoreError
{
    /// <summary>No such run, step or agent (NOT_FOUND).</summary>
    NotFound,
    /// <summary>The run's or step's state forbids the action (FAILED_PRECONDITION).</summary>
    FailedPrecondition,
    /// <summary>The request itself is wrong (INVALID_ARGUMENT).</summary>
    InvalidArgument,
    /// <summary>The store cannot be reached now; the call may be retried (UNAVAILABLE).</summary>
    Unavailable,
}

/// <summary>A store call refused with a reason that says what to fix.</summary>
public sealed class RunStoreException : Exception
{
    /// <param name="error">The class of failure (the gRPC status code).</param>
    /// <param name="reason">The machine-readable reason a client can act on (sent as google.rpc.ErrorInfo).</param>
    /// <param name="message">What happened and how to fix it.</param>
    /// <param name="field">For <see cref="RunStoreError.InvalidArgument"/>: the request field at fault, e.g. "page_token".</param>
    public RunStoreException(RunStoreError error, ErrorReason reason, string message, string? field = null)
        : base(message)
    {
        Error = error;
        Reason = reason;
        Field = field;
    }

    /// <summary>An invalid request field (INVALID_ARGUMENT, reported as a google.rpc.BadRequest field violation).</summary>
    public static RunStoreException Invalid(string field, string message) =>
        new(RunStoreError.InvalidArgument, ErrorReason.Unspecified, message, field);

    public RunStoreError Error { get; }

    public ErrorReason Reason { get; }

    /// <summary>The request field an <see cref="RunStoreError.InvalidArgument"/> is about; null otherwise.</summary>
    public string? Field { get; }

    /// <summary>
    /// An <see cref="RunStoreError.Unavailable"/> because the store is full (Redis at maxmemory refused a write), not
    /// unreachable: reads and deletions still work, and leases can still be renewed by nobody's fault but the data's.
    /// </summary>
    public bool StoreFull { get; init; }
}
