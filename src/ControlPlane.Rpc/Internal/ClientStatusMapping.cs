using System.Net;
using System.Net.Http;

namespace ControlPlane.Rpc.Internal;

/// <summary>Synthesizes a status when the transport, not the server, ends a call (doc/PROTOCOL-HTTP2.md).</summary>
internal static class ClientStatusMapping
{
    /// <summary>The "HTTP to gRPC status" table, for responses without grpc-status.</summary>
    public static StatusCode FromHttpStatus(HttpStatusCode status) => (int)status switch
    {
        400 => StatusCode.Internal,
        401 => StatusCode.Unauthenticated,
        403 => StatusCode.PermissionDenied,
        404 => StatusCode.Unimplemented,
        429 or 502 or 503 or 504 => StatusCode.Unavailable,
        _ => StatusCode.Unknown,
    };

    /// <summary>Maps a failure of the HTTP/2 exchange; <paramref name="deadlinePassed"/> turns a reset into DEADLINE_EXCEEDED.</summary>
    public static Status FromException(Exception exception, bool deadlinePassed)
    {
        if (exception is RpcException rpc)
        {
            return rpc.Status;
        }

        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is HttpProtocolException protocol)
            {
                return FromResetCode(protocol.ErrorCode, deadlinePassed, protocol.Message);
            }
        }

        if (deadlinePassed)
        {
            return new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded");
        }

        return exception switch
        {
            OperationCanceledException => new Status(StatusCode.Cancelled, "The call was cancelled."),
            HttpRequestException http => new Status(StatusCode.Unavailable, "Error connecting to the server: " + Innermost(http).Message),
            IOException io => new Status(StatusCode.Unavailable, "The connection to the server failed: " + Innermost(io).Message),
            _ => new Status(StatusCode.Internal, "The call failed: " + exception.Message),
        };
    }

    // RST_STREAM error codes per the spec's mapping; CANCEL after the deadline counts as the deadline.
    private static Status FromResetCode(long code, bool deadlinePassed, string message) => code switch
    {
        0x8 when deadlinePassed => new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded"),
        0x8 => new Status(StatusCode.Cancelled, "The server cancelled the call (RST_STREAM CANCEL)."),
        0x7 => new Status(StatusCode.Unavailable, "The server refused the stream (RST_STREAM REFUSED_STREAM); it did not process the call."),
        0xb => new Status(StatusCode.ResourceExhausted, "The server reset the stream with ENHANCE_YOUR_CALM: bandwidth exhausted."),
        0xc => new Status(StatusCode.PermissionDenied, "The server reset the stream with INADEQUATE_SECURITY: the transport is not secure enough."),
        _ => new Status(StatusCode.Internal, $"The HTTP/2 stream was reset (error code {code}): {message}"),
    };

    private static Exception Innermost(Exception exception)
    {
        while (exception.InnerException is not null)
        {
            exception = exception.InnerException;
        }

        return exception;
    }
}
