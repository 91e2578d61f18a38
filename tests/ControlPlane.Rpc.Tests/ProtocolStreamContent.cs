using System.Net;
using System.Threading.Channels;

namespace ControlPlane.Rpc.Tests;

/// <summary>A request body the test writes to while the call runs (HTTP/2 DATA frames on demand).</summary>
public sealed class ProtocolStreamContent : HttpContent
{
    private readonly Channel<byte[]> _chunks = Channel.CreateUnbounded<byte[]>();

    public ValueTask WriteAsync(byte[] chunk) => _chunks.Writer.WriteAsync(chunk);

    /// <summary>Ends the request stream (END_STREAM).</summary>
    public void Complete() => _chunks.Writer.TryComplete();

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        await foreach (var chunk in _chunks.Reader.ReadAllAsync(cancellationToken))
        {
            await stream.WriteAsync(chunk, cancellationToken);
            await stream.FlushAsync(cancellationToken);
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = -1;
        return false;
    }
}
