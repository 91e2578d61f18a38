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
}

/// <summary>A store call refused with a reason that says what to fix.</summary>
public sealed class RunStoreException : Exception
{
    public RunStoreException(RunStoreError error, string message)
        : base(message)
    {
        Error = error;
    }

    public RunStoreError Error { get; }
}
