using Google.Protobuf;

namespace ControlPlane.Rpc.Internal;

/// <summary>The request stream of a client-streaming or duplex call.</summary>
internal sealed class ClientRequestStream<TRequest, TResponse>(ClientCall<TRequest, TResponse> call) : IClientStreamWriter<TRequest>
    where TRequest : IMessage<TRequest>, new()
    where TResponse : IMessage<TResponse>, new()
{
    public WriteOptions? WriteOptions
    {
        get => call.WriteOptions;
        set => call.WriteOptions = value;
    }

    public Task WriteAsync(TRequest message, CancellationToken cancellationToken = default) => call.WriteAsync(message, cancellationToken);

    public Task CompleteAsync() => call.CompleteRequestAsync();
}
