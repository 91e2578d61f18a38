using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using Google.Protobuf;

namespace ControlPlane.Rpc.Internal;

/// <summary>Builds length-prefixed request messages: 1 byte compressed flag, 4 bytes big-endian length, payload.</summary>
internal static class ClientFraming
{
    public const int HeaderSize = 5;

    /// <summary>
    /// Serializes a message into a frame. With <paramref name="pooled"/> the buffer comes from the shared
    /// pool and must be returned by the caller; otherwise it is exactly the frame's size.
    /// </summary>
    public static byte[] Frame(IMessage message, bool compress, int? maxSendMessageSize, bool pooled, out int length)
    {
        var size = message.CalculateSize();
        if (compress)
        {
            return FrameCompressed(message, size, maxSendMessageSize, pooled, out length);
        }

        CheckSendLimit(size, maxSendMessageSize);
        length = HeaderSize + size;
        var buffer = pooled ? ArrayPool<byte>.Shared.Rent(length) : new byte[length];
        buffer[0] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(1), (uint)size);
        message.WriteTo(buffer.AsSpan(HeaderSize, size));
        return buffer;
    }

    private static byte[] FrameCompressed(IMessage message, int size, int? maxSendMessageSize, bool pooled, out int length)
    {
        var raw = ArrayPool<byte>.Shared.Rent(size);
        byte[] compressed;
        try
        {
            message.WriteTo(raw.AsSpan(0, size));
            compressed = GzipCompression.Compress(raw.AsSpan(0, size), CompressionLevel.Fastest);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(raw);
        }

        CheckSendLimit(compressed.Length, maxSendMessageSize);
        length = HeaderSize + compressed.Length;
        var buffer = pooled ? ArrayPool<byte>.Shared.Rent(length) : new byte[length];
        buffer[0] = 1;
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(1), (uint)compressed.Length);
        compressed.CopyTo(buffer.AsSpan(HeaderSize));
        return buffer;
    }

    private static void CheckSendLimit(int size, int? maxSendMessageSize)
    {
        if (size > maxSendMessageSize)
        {
            throw new RpcException(new Status(
                StatusCode.ResourceExhausted,
                $"Sending message exceeds the maximum configured message size ({size} > {maxSendMessageSize} bytes); raise RpcChannelOptions.MaxSendMessageSize or send a smaller message."));
        }
    }
}
