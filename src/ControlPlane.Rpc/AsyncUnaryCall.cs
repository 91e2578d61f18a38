using System.Runtime.CompilerServices;
using ControlPlane.Rpc.Internal;

namespace ControlPlane.Rpc;

/// <summary>A unary call in progress; await it for the response. Dispose cancels it if unfinished.</summary>
public sealed class AsyncUnaryCall<TResponse> : IDisposable
{
    private readonly ClientCallBase _call;

    internal AsyncUnaryCall(Task<TResponse> responseAsync, ClientCallBase call)
    {
        ResponseAsync = responseAsync;
        _call = call;
    }

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
