using ControlPlane.Rpc.Internal;

namespace ControlPlane.Rpc;

/// <summary>A duplex call: write requests and read responses independently. Dispose cancels it if unfinished.</summary>
public sealed class AsyncDuplexStreamingCall<TRequest, TResponse> : IDisposable
{
    private readonly ClientCallBase _call;

    internal AsyncDuplexStreamingCall(IClientStreamWriter<TRequest> requestStream, IAsyncStreamReader<TResponse> responseStream, ClientCallBase call)
    {
        RequestStream = requestStream;
        ResponseStream = responseStream;
        _call = call;
    }

    /// <summary>Writes request messages; <see cref="IClientStreamWriter{T}.CompleteAsync"/> ends them.</summary>
    public IClientStreamWriter<TRequest> RequestStream { get; }

    /// <summary>The response messages; MoveNext throws <see cref="RpcException"/> when the call fails.</summary>
    public IAsyncStreamReader<TResponse> ResponseStream { get; }

    /// <summary>The response headers, once the server has sent them.</summary>
    public Task<Metadata> ResponseHeadersAsync => _call.ResponseHeadersAsync;

    /// <summary>The final status; throws <see cref="InvalidOperationException"/> until the response stream has been read to its end.</summary>
    public Status GetStatus() => _call.GetStatus();

    /// <summary>The trailers; throws <see cref="InvalidOperationException"/> until the response stream has been read to its end.</summary>
    public Metadata GetTrailers() => _call.GetTrailers();

    public void Dispose() => _call.Dispose();
}
