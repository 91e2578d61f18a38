using Google.Protobuf;

namespace ControlPlane.Rpc.Internal;

/// <summary>The response stream of a server-streaming or duplex call; each write is flushed unless it carries <see cref="WriteOptions.BufferHint"/>.</summary>
internal sealed class HttpResponseStreamWriter<T> : IServerStreamWriter<T>
    where T : class, IMessage<T>
{
    private readonly HttpServerCallContext _call;

    public HttpResponseStreamWriter(HttpServerCallContext call) => _call = call;

    /// <summary>Same as the call's <see cref="ServerCallContext.WriteOptions"/>.</summary>
    public WriteOptions? WriteOptions
    {
        get => _call.WriteOptions;
        set => _call.WriteOptions = value;
    }

    public Task WriteAsync(T message, CancellationToken cancellationToken = default) =>
        _call.WriteMessageAsync(message, flush: _call.WriteOptions?.BufferHint != true, cancellationToken).AsTask();
}
