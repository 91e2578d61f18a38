using Microsoft.Extensions.Logging;

namespace ControlPlane.Rpc.Internal;

/// <summary>Server log messages with stable event ids.</summary>
internal static partial class ServerLog
{
    [LoggerMessage(1, LogLevel.Debug, "Unsupported Content-Type '{ContentType}' for {Method}.")]
    public static partial void UnsupportedContentType(ILogger logger, string method, string? contentType);

    [LoggerMessage(2, LogLevel.Debug, "Request of {Method} uses unsupported grpc-encoding '{Encoding}'.")]
    public static partial void UnsupportedRequestEncoding(ILogger logger, string method, string encoding);

    [LoggerMessage(3, LogLevel.Debug, "Ignoring invalid grpc-timeout '{Timeout}' on {Method}.")]
    public static partial void InvalidTimeout(ILogger logger, string method, string timeout);

    [LoggerMessage(4, LogLevel.Error, "Handler of {Method} threw an exception.")]
    public static partial void HandlerFailed(ILogger logger, string method, Exception exception);

    [LoggerMessage(5, LogLevel.Debug, "Deadline of {Method} exceeded.")]
    public static partial void DeadlineExceeded(ILogger logger, string method);

    [LoggerMessage(6, LogLevel.Debug, "Client cancelled or disconnected from {Method}.")]
    public static partial void CallAborted(ILogger logger, string method);

    [LoggerMessage(7, LogLevel.Debug, "Handler of {Method} ended after its call was over.")]
    public static partial void HandlerEndedAfterCall(ILogger logger, string method, Exception? exception);

    [LoggerMessage(8, LogLevel.Debug, "Response compression '{Encoding}' for {Method} is not in the client's grpc-accept-encoding; sending uncompressed.")]
    public static partial void CompressionNotAccepted(ILogger logger, string method, string encoding);

    [LoggerMessage(9, LogLevel.Debug, "Unimplemented call to {Path}.")]
    public static partial void Unimplemented(ILogger logger, string path);

    [LoggerMessage(10, LogLevel.Information, "{Method} ended with {StatusCode}: {Detail}")]
    public static partial void RpcError(ILogger logger, string method, StatusCode statusCode, string detail);
}
