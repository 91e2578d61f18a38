using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Google.Protobuf;

namespace ControlPlane.Rpc.Internal;

/// <summary>
/// gRPC length-prefixed messages: 1 byte compressed flag, 4 bytes big-endian length, payload.
/// Shared by client and server.
/// </summary>
internal static class MessageFraming
{
    public const int HeaderSize = 5;

    /// <summary>
    /// Writes one framed message to output (does not flush). When compress is true the payload is gzipped
    /// and the flag set. Throws RESOURCE_EXHAUSTED when the serialized message exceeds maxSendSize.
    /// </summary>
    public static void WriteMessage(IBufferWriter<byte> output, IMessage message, bool compress, CompressionLevel level, int? maxSendSize)
    {
        var size = message.CalculateSize();
        if (maxSendSize is { } max && size > max)
        {
            throw new RpcException(new Status(
                StatusCode.ResourceExhausted,
                $"Sending message of {size} bytes exceeds the send limit of {max} bytes."));
        }

        if (!compress)
        {
            var span = output.GetSpan(HeaderSize + size);
            span[0] = 0;
            BinaryPrimitives.WriteUInt32BigEndian(span.Slice(1), (uint)size);
            message.WriteTo(span.Slice(HeaderSize, size));
            output.Advance(HeaderSize + size);
            return;
        }

        var raw = ArrayPool<byte>.Shared.Rent(Math.Max(1, size));
        try
        {
            message.WriteTo(raw.AsSpan(0, size));
            var compressed = GzipCompression.Compress(raw.AsSpan(0, size), level);
            var span = output.GetSpan(HeaderSize + compressed.Length);
            span[0] = 1;
            BinaryPrimitives.WriteUInt32BigEndian(span.Slice(1), (uint)compressed.Length);
            compressed.CopyTo(span.Slice(HeaderSize));
            output.Advance(HeaderSize + compressed.Length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(raw);
        }
    }

    /// <summary>
    /// Takes one complete frame off the front of buffer (buffer is advanced past it). False when more data
    /// is needed. Throws RESOURCE_EXHAUSTED when the length prefix exceeds maxReceiveSize, INTERNAL on a bad flag.
    /// </summary>
    public static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, int maxReceiveSize, out ReadOnlySequence<byte> payload, out bool compressed)
    {
        payload = default;
        compressed = false;
        if (buffer.Length < HeaderSize)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[HeaderSize];
        buffer.Slice(0, HeaderSize).CopyTo(header);
        var flag = header[0];
        if (flag > 1)
        {
            throw new RpcException(new Status(StatusCode.Internal, $"Received a message with an invalid compressed flag {flag}; only 0 and 1 are defined."));
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(header.Slice(1));
        if (length > (uint)maxReceiveSize)
        {
            throw new RpcException(new Status(
                StatusCode.ResourceExhausted,
                $"Received message of {length} bytes exceeds the receive limit of {maxReceiveSize} bytes."));
        }

        if (buffer.Length < HeaderSize + length)
        {
            return false;
        }

        compressed = flag == 1;
        payload = buffer.Slice(HeaderSize, length);
        buffer = buffer.Slice(payload.End);
        return true;
    }

    /// <summary>
    /// Parses a frame's payload. A compressed payload needs encoding "gzip" (else INTERNAL, per the spec);
    /// decompressed data is bounded by maxReceiveSize; bad protobuf is INTERNAL.
    /// </summary>
    public static T ParsePayload<T>(ReadOnlySequence<byte> payload, bool compressed, string? encoding, int maxReceiveSize, MessageParser<T> parser)
        where T : IMessage<T>
    {
        if (!compressed)
        {
            return Parse(parser, payload);
        }

        if (string.IsNullOrEmpty(encoding) || string.Equals(encoding, GrpcProtocol.Identity, StringComparison.OrdinalIgnoreCase))
        {
            throw new RpcException(new Status(
                StatusCode.Internal,
                "Received a compressed message but grpc-encoding is " + (string.IsNullOrEmpty(encoding) ? "absent" : "'identity'") + "; set grpc-encoding to the compression used."));
        }

        if (!string.Equals(encoding, GrpcProtocol.Gzip, StringComparison.OrdinalIgnoreCase))
        {
            throw new RpcException(new Status(
                StatusCode.Internal,
                $"Received a message compressed with unsupported grpc-encoding '{encoding}'; supported: {GrpcProtocol.SupportedEncodings}."));
        }

        var buffer = GzipCompression.Decompress(payload, maxReceiveSize, out var length);
        try
        {
            return Parse(parser, new ReadOnlySequence<byte>(buffer, 0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Reads the next message from reader. Returns null at a clean end of stream; throws INTERNAL when the
    /// stream ends inside a frame, and the statuses of <see cref="TryReadFrame"/> and <see cref="ParsePayload{T}"/>.
    /// For a Stream, wrap it with PipeReader.Create(stream).
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public static async ValueTask<T?> ReadMessageAsync<T>(PipeReader reader, MessageParser<T> parser, int maxReceiveSize, string? encoding, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (result.IsCanceled)
            {
                throw new OperationCanceledException("Reading the message stream was canceled.");
            }

            var buffer = result.Buffer;
            var consumed = buffer.Start;
            var examined = buffer.End;
            try
            {
                if (TryReadFrame(ref buffer, maxReceiveSize, out var payload, out var compressed))
                {
                    var message = ParsePayload(payload, compressed, encoding, maxReceiveSize, parser);
                    consumed = buffer.Start;
                    examined = consumed;
                    return message;
                }

                if (result.IsCompleted)
                {
                    if (buffer.Length == 0)
                    {
                        consumed = buffer.End;
                        return null;
                    }

                    throw new RpcException(new Status(
                        StatusCode.Internal,
                        $"The message stream ended inside a message ({buffer.Length} bytes of an incomplete frame)."));
                }
            }
            finally
            {
                reader.AdvanceTo(consumed, examined);
            }
        }
    }

    private static T Parse<T>(MessageParser<T> parser, ReadOnlySequence<byte> data)
        where T : IMessage<T>
    {
        try
        {
            return parser.ParseFrom(data);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new RpcException(new Status(StatusCode.Internal, "Failed to parse the message: " + ex.Message), new Metadata(), ex);
        }
    }
}
