using ControlPlane.Interop;
using Microsoft.AspNetCore.Http;

namespace ControlPlane.InteropServer.Internal;

/// <summary>
/// Wraps each request body so the handlers can tell whether a request message arrived
/// compressed (the CompressedRequest feature); ServerCallContext does not say so.
/// </summary>
internal static class RequestFrameObserver
{
    private static readonly AsyncLocal<GrpcFrameLog?> CurrentLog = new();

    /// <summary>The frame log of the request being handled on this async flow.</summary>
    public static GrpcFrameLog Current =>
        CurrentLog.Value ?? throw new InvalidOperationException("The request frame observer middleware is not installed.");

    public static async Task Middleware(HttpContext context, RequestDelegate next)
    {
        var log = new GrpcFrameLog();
        CurrentLog.Value = log;
        var original = context.Request.Body;
        var observed = new GrpcFrameObserverStream(original, log);
        context.Request.Body = observed;
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            context.Request.Body = original;
        }
    }
}
