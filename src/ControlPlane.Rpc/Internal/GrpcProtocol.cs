namespace ControlPlane.Rpc.Internal;

/// <summary>Header names and values of gRPC over HTTP/2 (doc/PROTOCOL-HTTP2.md).</summary>
internal static class GrpcProtocol
{
    public const string ContentType = "application/grpc";
    public const string ContentTypeProto = "application/grpc+proto";
    public const string StatusHeader = "grpc-status";
    public const string MessageHeader = "grpc-message";
    public const string TimeoutHeader = "grpc-timeout";
    public const string EncodingHeader = "grpc-encoding";
    public const string AcceptEncodingHeader = "grpc-accept-encoding";
    public const string TeHeader = "te";
    public const string TeTrailers = "trailers";
    public const string Identity = "identity";
    public const string Gzip = "gzip";

    /// <summary>What this implementation can decode, advertised in grpc-accept-encoding.</summary>
    public const string SupportedEncodings = "identity,gzip";

    /// <summary>Default receive limit (4 MiB), as in other gRPC implementations.</summary>
    public const int DefaultMaxReceiveMessageSize = 4 * 1024 * 1024;

    /// <summary>True for "application/grpc" and "application/grpc+proto", parameters allowed.</summary>
    public static bool IsGrpcContentType(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType))
        {
            return false;
        }

        var span = contentType.AsSpan();
        var semicolon = span.IndexOf(';');
        if (semicolon >= 0)
        {
            span = span[..semicolon];
        }

        span = span.Trim();
        return span.Equals(ContentType, StringComparison.OrdinalIgnoreCase)
            || span.Equals(ContentTypeProto, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>True when the encoding is one this implementation can decode (null, identity, gzip).</summary>
    public static bool IsSupportedEncoding(string? encoding) =>
        string.IsNullOrEmpty(encoding)
        || string.Equals(encoding, Identity, StringComparison.OrdinalIgnoreCase)
        || string.Equals(encoding, Gzip, StringComparison.OrdinalIgnoreCase);

    /// <summary>True when a comma-separated grpc-accept-encoding value lists the encoding.</summary>
    public static bool AcceptsEncoding(string? acceptEncoding, string encoding)
    {
        if (string.IsNullOrEmpty(acceptEncoding))
        {
            return false;
        }

        foreach (var range in acceptEncoding.AsSpan().Split(','))
        {
            if (acceptEncoding.AsSpan()[range].Trim().Equals(encoding, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
