using Google.Protobuf;

namespace ControlPlane.Rpc.Internal;

/// <summary>The response stream of a server-streaming or duplex call.</summary>
internal sealed class ClientResponseStream<TRequest, TResponse>(ClientCall<TRequest, TResponse> call) : IAsyncStreamReader<TResponse>
    where TRequest : IMessage<TRequest>, new()
    where TResponse : IMessage<TResponse>, new()
{
    public TResponse Current => call.Current;

    public Task<bool> MoveNext(CancellationToken cancellationToken) => call.MoveNextAsync(cancellationToken);
}
