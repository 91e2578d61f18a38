using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace ControlPlane.Rpc.Internal;

/// <summary>Request validation and Trailers-Only responses, shared by every server call path.</summary>
internal static class ServerProtocol
{
    private static readonly string[] StatusStrings = CreateStatusStrings();

    /// <summary>The grpc-status header value for a code, without allocating for canonical codes.</summary>
    public static string StatusString(StatusCode code) =>
        (uint)code < (uint)StatusStrings.Length ? StatusStrings[(int)code] : ((int)code).ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Checks the HTTP-level shape of a gRPC request. On failure writes the error response itself (HTTP
    /// 415/405/426 per the spec, with a grpc-status) and returns false.
    /// </summary>
    public static bool ValidateRequest(HttpContext http, ServerRuntime runtime, string method)
    {
        var request = http.Request;
        if (!HttpMethods.IsPost(request.Method))
        {
            WriteHttpError(http, StatusCodes.Status405MethodNotAllowed, StatusCode.Internal, $"gRPC requests must use POST, not {request.Method}.");
            return false;
        }

        if (!GrpcProtocol.IsGrpcContentType(request.ContentType))
        {
            ServerLog.UnsupportedContentType(runtime.Logger, method, request.ContentType);
            WriteHttpError(
                http,
                StatusCodes.Status415UnsupportedMediaType,
                StatusCode.Internal,
                $"Content-Type '{request.ContentType}' is not supported; send 'application/grpc' or 'application/grpc+proto'.");
            return false;
        }

        if (!HttpProtocol.IsHttp2(request.Protocol))
        {
            WriteHttpError(http, StatusCodes.Status426UpgradeRequired, StatusCode.Internal, $"gRPC requires HTTP/2; the request used {request.Protocol}.");
            return false;
        }

        var te = request.Headers[GrpcProtocol.TeHeader];
        if (!ContainsToken(te, GrpcProtocol.TeTrailers))
        {
            WriteTrailersOnly(http, new Status(StatusCode.Internal, "The request lacks the 'te: trailers' header that gRPC over HTTP/2 requires."), null);
            return false;
        }

        return true;
    }

    /// <summary>Writes a Trailers-Only response: status (and trailers) in the HEADERS frame, no body.</summary>
    public static void WriteTrailersOnly(HttpContext http, Status status, Metadata.Entry[]? trailers)
    {
        var response = http.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = GrpcProtocol.ContentType;
        var headers = response.Headers;
        headers[GrpcProtocol.StatusHeader] = StatusString(status.StatusCode);
        if (!string.IsNullOrEmpty(status.Detail))
        {
            headers[GrpcProtocol.MessageHeader] = PercentEncoding.Encode(status.Detail);
        }

        if (trailers is not null)
        {
            foreach (var entry in trailers)
            {
                if (!MetadataHeaders.IsReserved(entry.Key))
                {
                    headers.Append(entry.Key, MetadataHeaders.EncodeValue(entry));
                }
            }
        }
    }

    /// <summary>Writes status and custom trailers as HTTP/2 trailers after the body.</summary>
    public static void WriteTrailers(HttpContext http, Status status, Metadata.Entry[]? trailers)
    {
        var response = http.Response;
        response.AppendTrailer(GrpcProtocol.StatusHeader, StatusString(status.StatusCode));
        if (!string.IsNullOrEmpty(status.Detail))
        {
            response.AppendTrailer(GrpcProtocol.MessageHeader, PercentEncoding.Encode(status.Detail));
        }

        if (trailers is not null)
        {
            foreach (var entry in trailers)
            {
                if (!MetadataHeaders.IsReserved(entry.Key))
                {
                    response.AppendTrailer(entry.Key, MetadataHeaders.EncodeValue(entry));
                }
            }
        }
    }

    private static void WriteHttpError(HttpContext http, int httpStatus, StatusCode code, string detail)
    {
        WriteTrailersOnly(http, new Status(code, detail), null);
        http.Response.StatusCode = httpStatus;
    }

    private static bool ContainsToken(Microsoft.Extensions.Primitives.StringValues values, string token)
    {
        foreach (var value in values)
        {
            if (value is not null && GrpcProtocol.AcceptsEncoding(value, token))
            {
                return true;
            }
        }

        return false;
    }

    private static string[] CreateStatusStrings()
    {
        var strings = new string[17];
        for (var i = 0; i < strings.Length; i++)
        {
            strings[i] = i.ToString(CultureInfo.InvariantCulture);
        }

        return strings;
    }
}
