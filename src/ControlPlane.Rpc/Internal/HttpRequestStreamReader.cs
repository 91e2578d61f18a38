using Google.Protobuf;

namespace ControlPlane.Rpc.Internal;

/// <summary>The request stream of a client-streaming or duplex call on the server.</summary>
internal sealed class HttpRequestStreamReader<T> : IAsyncStreamReader<T>
    where T : class, IMessage<T>, new()
{
    private static readonly Task<bool> True = Task.FromResult(true);
    private static readonly Task<bool> False = Task.FromResult(false);

    private readonly HttpServerCallContext _call;
    private T? _current;

    public HttpRequestStreamReader(HttpServerCallContext call) => _call = call;

    public T Current => _current ?? throw new InvalidOperationException("No current message; call MoveNext and check it returned true.");

    public Task<bool> MoveNext(CancellationToken cancellationToken)
    {
        ValueTask<T?> read;
        try
        {
            read = _call.ReadMessageAsync(MessageParsers<T>.Parser, cancellationToken);
        }
        catch (OperationCanceledException ex)
        {
            return Task.FromCanceled<bool>(ex.CancellationToken.IsCancellationRequested ? ex.CancellationToken : new CancellationToken(canceled: true));
        }
        catch (Exception ex)
        {
            return Task.FromException<bool>(ex);
        }

        // A message already buffered costs no state machine and no Task.
        if (read.IsCompletedSuccessfully)
        {
            _current = read.Result;
            return _current is null ? False : True;
        }

        return AwaitAsync(read);
    }

    private async Task<bool> AwaitAsync(ValueTask<T?> read)
    {
        _current = await read.ConfigureAwait(false);
        return _current is not null;
    }
}
