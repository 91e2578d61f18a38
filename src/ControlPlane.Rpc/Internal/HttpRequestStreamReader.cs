using Google.Protobuf;

namespace ControlPlane.Rpc.Internal;

/// <summary>The request stream of a client-streaming or duplex call on the server.</summary>
internal sealed class HttpRequestStreamReader<T> : IAsyncStreamReader<T>
    where T : class, IMessage<T>, new()
{
    private readonly HttpServerCallContext _call;
    private T? _current;

    public HttpRequestStreamReader(HttpServerCallContext call) => _call = call;

    public T Current => _current ?? throw new InvalidOperationException("No current message; call MoveNext and check it returned true.");

    public async Task<bool> MoveNext(CancellationToken cancellationToken)
    {
        _current = await _call.ReadMessageAsync(MessageParsers<T>.Parser, cancellationToken).ConfigureAwait(false);
        return _current is not null;
    }
}
