namespace ControlPlane.Rpc;

/// <summary>What a server handler knows about its call, and what it can set on the response.</summary>
public abstract class ServerCallContext
{
    /// <summary>The full method name, "/pkg.Service/Method".</summary>
    public abstract string Method { get; }

    /// <summary>The :authority of the request.</summary>
    public abstract string Host { get; }

    /// <summary>The remote peer, e.g. "ipv4:127.0.0.1:5000".</summary>
    public abstract string Peer { get; }

    /// <summary>The call's deadline in UTC; <see cref="DateTime.MaxValue"/> when none.</summary>
    public abstract DateTime Deadline { get; }

    /// <summary>Metadata the client sent (reserved headers removed).</summary>
    public abstract Metadata RequestHeaders { get; }

    /// <summary>Fires when the deadline passes or the client cancels or disconnects.</summary>
    public abstract CancellationToken CancellationToken { get; }

    /// <summary>Trailers sent with the status.</summary>
    public abstract Metadata ResponseTrailers { get; }

    /// <summary>The status the call ends with when the handler returns normally.</summary>
    public abstract Status Status { get; set; }

    /// <summary>Write options for the response messages.</summary>
    public abstract WriteOptions? WriteOptions { get; set; }

    /// <summary>"gzip" compresses response messages when the client's grpc-accept-encoding allows it; null leaves the server default.</summary>
    public abstract string? ResponseCompression { get; set; }

    /// <summary>Free-form state shared by interceptors and the handler for this call.</summary>
    public abstract IDictionary<object, object> UserState { get; }

    /// <summary>Sends the response headers now; may be called once, before the first message.</summary>
    public abstract Task WriteResponseHeadersAsync(Metadata responseHeaders);
}
