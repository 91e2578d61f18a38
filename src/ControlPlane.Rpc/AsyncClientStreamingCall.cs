using System.Runtime.CompilerServices;
using ControlPlane.Rpc.Internal;

namespace ControlPlane.Rpc;

/// <summary>A client-streaming call: write requests, complete, await the response. Dispose cancels it if unfinished.</summary>
public sealed class AsyncClientStreamingCall<TRequest, TResponse> : IDisposable
{
    private readonly ClientCallBase _call;

    internal AsyncClientStreamingCall(IClientStreamWriter<TRequest> requestStream, Task<TResponse> responseAsync, ClientCallBase call)
    {
        RequestStream = requestStream;
        ResponseAsync = responseAsync;
        _call = call;
    }

    /// <summary>Writes request messages; <see cref="IClientStreamWriter{T}.CompleteAsync"/> ends them.</summary>
    public IClientStreamWriter<TRequest> RequestStream { get; }

    /// <summary>The response; faults with <see cref="RpcException"/> when the call fails.</summary>
    public Task<TResponse> ResponseAsync { get; }

    /// <summary>The response headers, once the server has sent them.</summary>
    public Task<Metadata> ResponseHeadersAsync => _call.ResponseHeadersAsync;

    public TaskAwaiter<TResponse> GetAwaiter() => ResponseAsync.GetAwaiter();

    /// <summary>The final status; throws <see cref="InvalidOperationException"/> while the call runs.</summary>
    public Status GetStatus() => _call.GetStatus();

    /// <summary>The trailers; throws <see cref="InvalidOperationException"/> while the call runs.</summary>
    public Metadata GetTrailers() => _call.GetTrailers();

    public void Dispose() => _call.Dispose();
}
