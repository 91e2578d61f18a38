using System.Net;

namespace ControlPlane.Rpc.Internal;

/// <summary>
/// A request body that stays open while the caller writes messages: the handler's request stream is
/// handed to the writer and the body ends (END_STREAM) only when <see cref="Complete"/> is called.
/// </summary>
internal sealed class ClientStreamingContent : HttpContent
{
    private readonly TaskCompletionSource<Stream> _stream = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ClientStreamingContent()
    {
        Headers.TryAddWithoutValidation("content-type", GrpcProtocol.ContentType);
    }

    /// <summary>The HTTP/2 request stream, once the handler has opened it.</summary>
    public Task<Stream> RequestStream => _stream.Task;

    /// <summary>Ends the request body; the handler then sends END_STREAM.</summary>
    public void Complete() => _completed.TrySetResult();

    /// <summary>Fails the body so no END_STREAM is sent; the stream is reset by the call's cancellation.</summary>
    public void Abort()
    {
        _stream.TrySetCanceled();
        _completed.TrySetCanceled();
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        _stream.TrySetResult(stream);
        await _completed.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
