namespace ControlPlane.Interop;

/// <summary>
/// Passes bytes through unchanged while parsing the gRPC length-prefixed framing
/// (1 flag byte, 4-byte big-endian length, payload), so a test can see whether each
/// message crossed the wire with the compressed flag set. Works for both directions:
/// reads observe what the wrapped stream yields, writes observe what is written to it.
/// </summary>
internal sealed class GrpcFrameObserverStream(Stream inner, GrpcFrameLog log) : Stream
{
    private readonly byte[] _header = new byte[5];
    private int _headerFilled;
    private long _payloadRemaining;

    public override bool CanRead => inner.CanRead;

    public override bool CanSeek => false;

    public override bool CanWrite => inner.CanWrite;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        var read = inner.Read(buffer, offset, count);
        Observe(buffer.AsSpan(offset, read));
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Observe(buffer.Span[..read]);
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count)
    {
        Observe(buffer.AsSpan(offset, count));
        inner.Write(buffer, offset, count);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Observe(buffer.Span);
        return inner.WriteAsync(buffer, cancellationToken);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync() => inner.DisposeAsync();

    private void Observe(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            if (_payloadRemaining > 0)
            {
                var skip = (int)Math.Min(_payloadRemaining, data.Length);
                _payloadRemaining -= skip;
                data = data[skip..];
                continue;
            }

            var take = Math.Min(5 - _headerFilled, data.Length);
            data[..take].CopyTo(_header.AsSpan(_headerFilled));
            _headerFilled += take;
            data = data[take..];
            if (_headerFilled == 5)
            {
                _headerFilled = 0;
                _payloadRemaining = (uint)(_header[1] << 24 | _header[2] << 16 | _header[3] << 8 | _header[4]);
                log.Add(_header[0] == 1);
            }
        }
    }
}
