using System.Net;

namespace ControlPlane.Rpc.Internal;

/// <summary>A request body holding one framed message, written in a single DATA frame run.</summary>
internal sealed class ClientUnaryContent : HttpContent
{
    private readonly byte[] _frame;

    public ClientUnaryContent(byte[] frame)
    {
        _frame = frame;
        Headers.TryAddWithoutValidation("content-type", GrpcProtocol.ContentType);
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        stream.WriteAsync(_frame).AsTask();

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
        stream.WriteAsync(_frame, cancellationToken).AsTask();

    // No content-length: gRPC bodies are delimited by the framing and END_STREAM.
    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
