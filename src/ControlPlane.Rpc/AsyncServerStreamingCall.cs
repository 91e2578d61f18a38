using ControlPlane.Rpc.Internal;

namespace ControlPlane.Rpc;

/// <summary>A server-streaming call: read responses until MoveNext returns false. Dispose cancels it if unfinished.</summary>
public sealed class AsyncServerStreamingCall<TResponse> : IDisposable
{
    private readonly ClientCallBase _call;

    internal AsyncServerStreamingCall(IAsyncStreamReader<TResponse> responseStream, ClientCallBase call)
    {
        ResponseStream = responseStream;
        _call = call;
    }

    /// <summary>The response messages; MoveNext throws <see cref="RpcException"/> when the call fails.</summary>
    public IAsyncStreamReader<TResponse> ResponseStream { get; }

    /// <summary>The response headers, once the server has sent them.</summary>
    public Task<Metadata> ResponseHeadersAsync => _call.ResponseHeadersAsync;

    /// <summary>The final status; throws <see cref="InvalidOperationException"/> until the stream has been read to its end.</summary>
    public Status GetStatus() => _call.GetStatus();

    /// <summary>The trailers; throws <see cref="InvalidOperationException"/> until the stream has been read to its end.</summary>
    public Metadata GetTrailers() => _call.GetTrailers();

    public void Dispose() => _call.Dispose();
}
