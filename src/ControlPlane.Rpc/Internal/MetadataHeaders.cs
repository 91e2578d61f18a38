using System.Buffers.Text;
using System.Net.Http.Headers;

namespace ControlPlane.Rpc.Internal;

/// <summary>Converts between <see cref="Metadata"/> entries and HTTP/2 header fields.</summary>
internal static class MetadataHeaders
{
    /// <summary>True for headers that carry the protocol itself and never appear in Metadata.</summary>
    public static bool IsReserved(string key)
    {
        if (key.Length == 0 || key[0] == ':')
        {
            return true;
        }

        if (key.StartsWith("grpc-", StringComparison.OrdinalIgnoreCase))
        {
            // Rich error details travel as a regular binary trailer.
            return !key.Equals("grpc-status-details-bin", StringComparison.OrdinalIgnoreCase);
        }

        return key.Equals("content-type", StringComparison.OrdinalIgnoreCase)
            || key.Equals("te", StringComparison.OrdinalIgnoreCase)
            || key.Equals("host", StringComparison.OrdinalIgnoreCase)
            || key.Equals("content-length", StringComparison.OrdinalIgnoreCase)
            || key.Equals("connection", StringComparison.OrdinalIgnoreCase)
            || key.Equals("transfer-encoding", StringComparison.OrdinalIgnoreCase)
            || key.Equals("keep-alive", StringComparison.OrdinalIgnoreCase)
            || key.Equals("upgrade", StringComparison.OrdinalIgnoreCase)
            || key.Equals("accept-encoding", StringComparison.OrdinalIgnoreCase)
            || key.Equals("content-encoding", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The header value for an entry: padded base64 for "-bin" keys, the string otherwise.</summary>
    public static string EncodeValue(Metadata.Entry entry) =>
        entry.IsBinary ? Convert.ToBase64String(entry.ValueBytes) : entry.Value;

    /// <summary>
    /// Adds one received header field to metadata unless reserved. "-bin" values are base64 (padding
    /// optional) and may hold several comma-separated values; throws FormatException on bad base64.
    /// </summary>
    public static void AddHeader(Metadata metadata, string key, string value)
    {
        if (IsReserved(key))
        {
            return;
        }

        key = key.ToLowerInvariant();
        if (!key.EndsWith(Metadata.BinaryHeaderSuffix, StringComparison.Ordinal))
        {
            metadata.Add(key, value);
            return;
        }

        foreach (var range in value.AsSpan().Split(','))
        {
            metadata.Add(key, DecodeBase64(key, value.AsSpan()[range].Trim()));
        }
    }

    /// <summary>Converts received HTTP headers or trailers to metadata, dropping reserved ones.</summary>
    public static Metadata FromHttpHeaders(HttpHeadersNonValidated headers)
    {
        var metadata = new Metadata();
        foreach (var header in headers)
        {
            if (IsReserved(header.Key))
            {
                continue;
            }

            foreach (var value in header.Value)
            {
                try
                {
                    AddHeader(metadata, header.Key, value);
                }
                catch (Exception ex) when (ex is ArgumentException or FormatException)
                {
                    // The spec lets a client drop a header value that is valid HTTP but not valid gRPC metadata.
                }
            }
        }

        return metadata;
    }

    /// <summary>Decodes padded or unpadded base64.</summary>
    public static byte[] DecodeBase64(string key, ReadOnlySpan<char> value)
    {
        var padding = (4 - (value.Length % 4)) % 4;
        if (padding == 3)
        {
            throw new FormatException($"Header '{key}' is not valid base64.");
        }

        Span<char> padded = value.Length + padding <= 512 ? stackalloc char[value.Length + padding] : new char[value.Length + padding];
        value.CopyTo(padded);
        padded[value.Length..].Fill('=');
        var bytes = new byte[(padded.Length / 4) * 3];
        if (!Convert.TryFromBase64Chars(padded, bytes, out var written))
        {
            throw new FormatException($"Header '{key}' is not valid base64.");
        }

        return written == bytes.Length ? bytes : bytes.AsSpan(0, written).ToArray();
    }
}
