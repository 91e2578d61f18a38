using System.Buffers.Binary;
using System.IO.Compression;
using Google.Protobuf;

namespace ControlPlane.Rpc.Tests;

/// <summary>Hand-built gRPC frames, so tests control every byte the server sees.</summary>
public static class ProtocolFrames
{
    public static byte[] Frame(IMessage message) => Frame(message.ToByteArray(), 0, message.ToByteArray().Length);

    public static byte[] GzipFrame(IMessage message) => Frame(Gzip(message.ToByteArray()), 1, -1);

    /// <summary>A frame with a chosen flag and a declared length (-1: the payload's real length).</summary>
    public static byte[] Frame(byte[] payload, byte flag, int declaredLength)
    {
        var frame = new byte[5 + payload.Length];
        frame[0] = flag;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)(declaredLength < 0 ? payload.Length : declaredLength));
        payload.CopyTo(frame, 5);
        return frame;
    }

    public static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }

    public static byte[] Gunzip(byte[] data)
    {
        using var input = new GZipStream(new MemoryStream(data), CompressionMode.Decompress);
        using var output = new MemoryStream();
        input.CopyTo(output);
        return output.ToArray();
    }

    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();
}
