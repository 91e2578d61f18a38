using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace ControlPlane.Rpc.Internal;

/// <summary>
/// Reads length-prefixed messages from a response body through one pooled buffer, so small messages
/// that arrive together cost one read of the HTTP/2 stream rather than two per message.
/// </summary>
internal sealed class ClientMessageReader
{
    private const int InitialBufferSize = 4096;

    private readonly Stream _stream;
    private readonly int _maxReceiveMessageSize;
    private readonly bool _gzip;
    private readonly string? _encoding;
    private byte[]? _buffer;
    private byte[]? _decompressed;
    private int _start;
    private int _end;

    public ClientMessageReader(Stream stream, int maxReceiveMessageSize, string? encoding)
    {
        _stream = stream;
        _maxReceiveMessageSize = maxReceiveMessageSize;
        _encoding = encoding;
        _gzip = string.Equals(encoding, GrpcProtocol.Gzip, StringComparison.OrdinalIgnoreCase);
        _buffer = ArrayPool<byte>.Shared.Rent(InitialBufferSize);
    }

    /// <summary>The payload of the last message read; valid until the next read.</summary>
    public ReadOnlyMemory<byte> Current { get; private set; }

    /// <summary>Reads the next message; false at a clean end of the stream.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<bool> MoveNextAsync(CancellationToken cancellationToken)
    {
        Current = default;
        ReturnDecompressed();
        if (!await FillAsync(ClientFraming.HeaderSize, cancellationToken).ConfigureAwait(false))
        {
            if (_end == _start)
            {
                return false;
            }

            throw Error(StatusCode.Internal, $"The response ended inside a message header ({_end - _start} of 5 bytes).");
        }

        var buffer = _buffer!;
        var flag = buffer[_start];
        var length = BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(_start + 1, 4));
        if (flag > 1)
        {
            throw Error(StatusCode.Internal, $"Invalid compressed flag {flag} in a response message header.");
        }

        if (length > (uint)_maxReceiveMessageSize)
        {
            throw ReceiveLimitExceeded(length);
        }

        var total = ClientFraming.HeaderSize + (int)length;
        if (!await FillAsync(total, cancellationToken).ConfigureAwait(false))
        {
            throw Error(StatusCode.Internal, $"The response ended inside a message ({_end - _start - ClientFraming.HeaderSize} of {length} bytes).");
        }

        buffer = _buffer!;
        var payload = new ReadOnlyMemory<byte>(buffer, _start + ClientFraming.HeaderSize, (int)length);
        _start += total;
        Current = flag == 0 ? payload : Decompress(payload);
        return true;
    }

    /// <summary>Returns the pooled buffer; called by the reading side once it is done.</summary>
    public void Release()
    {
        ReturnDecompressed();
        var buffer = _buffer;
        _buffer = null;
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void ReturnDecompressed()
    {
        if (_decompressed is not null)
        {
            ArrayPool<byte>.Shared.Return(_decompressed);
            _decompressed = null;
        }
    }

    private static RpcException Error(StatusCode code, string detail) => new(new Status(code, detail));

    private RpcException ReceiveLimitExceeded(long length) => Error(
        StatusCode.ResourceExhausted,
        $"Received message exceeds the maximum configured message size ({length} > {_maxReceiveMessageSize} bytes); raise RpcChannelOptions.MaxReceiveMessageSize to accept it.");

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> FillAsync(int count, CancellationToken cancellationToken)
    {
        if (_end - _start >= count)
        {
            return true;
        }

        var buffer = _buffer ?? throw new ObjectDisposedException(nameof(ClientMessageReader));
        if (buffer.Length - _start < count)
        {
            // Move the partial message to the front, into a larger buffer when it cannot fit.
            var target = count > buffer.Length ? ArrayPool<byte>.Shared.Rent(Math.Max(count, buffer.Length * 2)) : buffer;
            Buffer.BlockCopy(buffer, _start, target, 0, _end - _start);
            _end -= _start;
            _start = 0;
            if (!ReferenceEquals(target, buffer))
            {
                ArrayPool<byte>.Shared.Return(buffer);
                _buffer = buffer = target;
            }
        }

        while (_end - _start < count)
        {
            var read = await _stream.ReadAsync(buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return false;
            }

            _end += read;
        }

        return true;
    }

    private ReadOnlyMemory<byte> Decompress(ReadOnlyMemory<byte> payload)
    {
        if (!_gzip)
        {
            throw Error(
                StatusCode.Internal,
                _encoding is null or GrpcProtocol.Identity
                    ? "A response message is marked compressed but the response has no grpc-encoding."
                    : $"A response message is compressed with unsupported grpc-encoding '{_encoding}'.");
        }

        _decompressed = GzipCompression.Decompress(new ReadOnlySequence<byte>(payload), _maxReceiveMessageSize, out var length);
        return new ReadOnlyMemory<byte>(_decompressed, 0, length);
    }
}
