namespace ControlPlane.Rpc;

/// <summary>Writes a stream of messages; one write at a time.</summary>
public interface IAsyncStreamWriter<in T>
{
    /// <summary>Writes one message; completes once it has been handed to the transport.</summary>
    Task WriteAsync(T message, CancellationToken cancellationToken = default);
}
