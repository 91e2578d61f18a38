using System.Globalization;
using System.Text;
using ControlPlane.Scheduler.Services;
using ControlPlane.V1;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Microsoft.AspNetCore.Http;

namespace ControlPlane.Scheduler.Security;

/// <summary>
/// Answers a refused gRPC call as gRPC does: HTTP 200 with grpc-status, grpc-message and grpc-status-details-bin (a
/// google.rpc.Status with an ErrorInfo) in a trailers-only response, so every gRPC client sees UNAUTHENTICATED or
/// PERMISSION_DENIED with the reason instead of an HTTP 401/403. A call to the JSON API (any request that is not gRPC)
/// gets HTTP 401 or 403 with the JSON error the transcoded routes answer with: {code, message, details[]}.
/// </summary>
internal static class GrpcStatusResponse
{
    private static readonly JsonFormatter JsonStatus = new(JsonFormatter.Settings.Default.WithTypeRegistry(TypeRegistry.FromMessages(ErrorInfo.Descriptor)));

    public static Task WriteAsync(Microsoft.AspNetCore.Http.HttpResponse response, AuthFailure failure)
    {
        var info = new ErrorInfo { Domain = RpcErrors.Domain, Reason = RpcErrors.ReasonName(failure.Reason) };
        foreach (var (key, value) in failure.Metadata)
        {
            if (!string.IsNullOrEmpty(value))
            {
                info.Metadata[key] = value;
            }
        }

        var status = new Google.Rpc.Status { Code = (int)failure.Code, Message = failure.Message, Details = { Any.Pack(info) } };
        if (!IsGrpc(response.HttpContext.Request))
        {
            return WriteHttpAsync(response, failure, status);
        }

        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/grpc";
        response.Headers["grpc-status"] = ((int)failure.Code).ToString(CultureInfo.InvariantCulture);
        response.Headers["grpc-message"] = PercentEncode(failure.Message);
        response.Headers["grpc-status-details-bin"] = Convert.ToBase64String(status.ToByteArray()).TrimEnd('=');
        return Task.CompletedTask;
    }

    /// <summary>gRPC (and gRPC-Web) requests say so in their content type; anything else is plain HTTP (/metrics, JSON).</summary>
    private static bool IsGrpc(Microsoft.AspNetCore.Http.HttpRequest request) =>
        request.ContentType is { } type && type.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// A plain HTTP caller (Prometheus, curl, a browser) gets 401 or 403 with the google.rpc.Status as JSON, the shape
    /// JSON transcoding gives every other error.
    /// </summary>
    private static Task WriteHttpAsync(Microsoft.AspNetCore.Http.HttpResponse response, AuthFailure failure, Google.Rpc.Status status)
    {
        response.StatusCode = failure.Code == Grpc.Core.StatusCode.Unauthenticated ? StatusCodes.Status401Unauthorized : StatusCodes.Status403Forbidden;
        if (response.StatusCode == StatusCodes.Status401Unauthorized)
        {
            response.Headers.WWWAuthenticate = "Bearer";
        }

        response.ContentType = "application/json; charset=utf-8";
        return response.WriteAsync(JsonStatus.Format(status));
    }

    /// <summary>grpc-message's encoding: printable ASCII but '%' as is, every other UTF-8 byte as %XX.</summary>
    private static string PercentEncode(string message)
    {
        var text = new StringBuilder(message.Length);
        foreach (var b in Encoding.UTF8.GetBytes(message))
        {
            if (b is >= 0x20 and <= 0x7e && b != (byte)'%')
            {
                text.Append((char)b);
            }
            else
            {
                text.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return text.ToString();
    }
}
