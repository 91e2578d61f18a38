namespace ControlPlane.Rpc;

/// <summary>A call that ended with a non-OK status, carrying the status and the trailers.</summary>
public sealed class RpcException : Exception
{
    public RpcException(Status status)
        : this(status, new Metadata())
    {
    }

    public RpcException(Status status, Metadata trailers)
        : this(status, trailers, null)
    {
    }

    public RpcException(Status status, Metadata trailers, Exception? innerException)
        : base(status.ToString(), innerException)
    {
        ArgumentNullException.ThrowIfNull(trailers);
        Status = status;
        Trailers = trailers;
    }

    public RpcException()
        : this(new Status(StatusCode.Unknown, string.Empty))
    {
    }

    public RpcException(string message)
        : this(new Status(StatusCode.Unknown, message))
    {
    }

    public RpcException(string message, Exception innerException)
        : this(new Status(StatusCode.Unknown, message), new Metadata(), innerException)
    {
    }

    /// <summary>The status the call ended with.</summary>
    public Status Status { get; }

    /// <summary>Shortcut for <c>Status.StatusCode</c>.</summary>
    public StatusCode StatusCode => Status.StatusCode;

    /// <summary>Trailers sent with the status.</summary>
    public Metadata Trailers { get; }
}
