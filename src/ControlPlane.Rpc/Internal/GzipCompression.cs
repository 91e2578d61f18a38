using System.Buffers;
using System.IO.Compression;

namespace ControlPlane.Rpc.Internal;

/// <summary>gzip for message payloads.</summary>
internal static class GzipCompression
{
    /// <summary>Compresses data into a new array.</summary>
    public static byte[] Compress(ReadOnlySpan<byte> data, CompressionLevel level)
    {
        using var output = new MemoryStream(Math.Max(64, data.Length / 2));
        using (var gzip = new GZipStream(output, level, leaveOpen: true))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }

    /// <summary>
    /// Decompresses a payload into a pooled buffer (return it to ArrayPool&lt;byte&gt;.Shared); throws
    /// RESOURCE_EXHAUSTED past maxSize and INTERNAL when the data is not valid gzip.
    /// </summary>
    public static byte[] Decompress(ReadOnlySequence<byte> payload, int maxSize, out int length)
    {
        byte[]? rented = null;
        Stream input;
        if (payload.IsSingleSegment && System.Runtime.InteropServices.MemoryMarshal.TryGetArray(payload.First, out var segment))
        {
            input = new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false);
        }
        else
        {
            rented = ArrayPool<byte>.Shared.Rent((int)payload.Length);
            payload.CopyTo(rented);
            input = new MemoryStream(rented, 0, (int)payload.Length, writable: false);
        }

        var output = ArrayPool<byte>.Shared.Rent(Math.Max(256, (int)Math.Min(payload.Length * 4L, maxSize + 1L)));
        length = 0;
        try
        {
            using var gzip = new GZipStream(input, CompressionMode.Decompress);
            while (true)
            {
                if (length == output.Length)
                {
                    if (length > maxSize)
                    {
                        break;
                    }

                    var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(output.Length * 2L, maxSize + 1L));
                    output.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(output);
                    output = bigger;
                }

                var read = gzip.Read(output, length, output.Length - length);
                if (read == 0)
                {
                    break;
                }

                length += read;
            }

            if (length > maxSize)
            {
                ArrayPool<byte>.Shared.Return(output);
                throw new RpcException(new Status(
                    StatusCode.ResourceExhausted,
                    $"Received message after decompression is larger than the limit of {maxSize} bytes."));
            }

            return output;
        }
        catch (InvalidDataException ex)
        {
            ArrayPool<byte>.Shared.Return(output);
            throw new RpcException(new Status(StatusCode.Internal, "Received message is not valid gzip: " + ex.Message), new Metadata(), ex);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }
}
