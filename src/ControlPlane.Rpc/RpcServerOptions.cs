using System.IO.Compression;
using ControlPlane.Rpc.Internal;

namespace ControlPlane.Rpc;

/// <summary>Options of the gRPC server, shared by every service it hosts.</summary>
public sealed class RpcServerOptions
{
    /// <summary>Largest request message accepted, in bytes (after decompression). Default is 4 MiB.</summary>
    public int MaxReceiveMessageSize { get; set; } = GrpcProtocol.DefaultMaxReceiveMessageSize;

    /// <summary>Largest response message sent, in bytes; null means no limit. Default is null.</summary>
    public int? MaxSendMessageSize { get; set; }

    /// <summary>Interceptors, outermost first. Default is empty.</summary>
    public IList<ServerInterceptor> Interceptors { get; } = new List<ServerInterceptor>();

    /// <summary>
    /// Compression for response messages ("gzip"), used when the client's grpc-accept-encoding allows it;
    /// a handler can override it per call. Default is null (uncompressed).
    /// </summary>
    public string? ResponseCompression { get; set; }

    /// <summary>gzip level for compressed responses. Default is <see cref="CompressionLevel.Fastest"/>.</summary>
    public CompressionLevel CompressionLevel { get; set; } = CompressionLevel.Fastest;

    /// <summary>
    /// When true, a handler's unexpected exception message is sent to the client in the UNKNOWN status
    /// detail. Default is false, so internals do not leak.
    /// </summary>
    public bool EnableDetailedErrors { get; set; }

    /// <summary>Clock for deadlines. Default is <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Throws with a message naming the option and how to fix it.</summary>
    internal void Validate()
    {
        if (MaxReceiveMessageSize <= 0)
        {
            throw new InvalidOperationException($"RpcServerOptions.MaxReceiveMessageSize must be positive (got {MaxReceiveMessageSize}); the default is 4194304 (4 MiB).");
        }

        if (MaxSendMessageSize is <= 0)
        {
            throw new InvalidOperationException($"RpcServerOptions.MaxSendMessageSize must be positive or null for no limit (got {MaxSendMessageSize}).");
        }

        if (ResponseCompression is not null && !string.Equals(ResponseCompression, GrpcProtocol.Gzip, StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"RpcServerOptions.ResponseCompression '{ResponseCompression}' is not supported; use \"gzip\" or null.");
        }

        if (TimeProvider is null)
        {
            throw new InvalidOperationException("RpcServerOptions.TimeProvider must not be null; use TimeProvider.System.");
        }

        foreach (var interceptor in Interceptors)
        {
            if (interceptor is null)
            {
                throw new InvalidOperationException("RpcServerOptions.Interceptors contains null; remove the entry.");
            }
        }
    }
}
