using System.Net;
using Microsoft.AspNetCore.Http;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// On an HTTP listener bound to a loopback address, only requests that name a loopback host (localhost, 127.0.0.1,
/// [::1], any port) are served. A web page cannot then re-point its own domain at 127.0.0.1 (DNS rebinding) and call
/// the JSON API as a same-origin page: with authentication off, that would let any site a developer opens submit
/// shell steps. The gRPC listener is not concerned: browsers cannot speak h2c.
/// </summary>
internal sealed class LoopbackHostCheck(RequestDelegate next, Func<int?> httpPort)
{
    public Task InvokeAsync(HttpContext context)
    {
        if (context.Connection.LocalPort != httpPort() || IsLoopbackName(context.Request.Host.Host))
        {
            return next(context);
        }

        context.Response.StatusCode = StatusCodes.Status421MisdirectedRequest;
        context.Response.ContentType = "text/plain; charset=utf-8";
        var port = context.Connection.LocalPort;
        return context.Response.WriteAsync(
            $"this scheduler's HTTP listener is on loopback and serves requests for localhost, 127.0.0.1 or [::1] only, not '{context.Request.Host.Host}'; open http://127.0.0.1:{port}/ (or give --http-listen a non-loopback address, with TLS and tokens, to serve other names)\n",
            context.RequestAborted);
    }

    private static bool IsLoopbackName(string host)
    {
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        return IPAddress.TryParse(host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address);
    }
}
