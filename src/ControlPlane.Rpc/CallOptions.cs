namespace ControlPlane.Rpc;

/// <summary>Options of one client call.</summary>
/// <param name="Headers">Request metadata; null sends none.</param>
/// <param name="Deadline">UTC deadline; null means none.</param>
/// <param name="CancellationToken">Cancels the call.</param>
public readonly record struct CallOptions(Metadata? Headers = null, DateTime? Deadline = null, CancellationToken CancellationToken = default)
{
    /// <summary>"gzip" compresses request messages and sends <c>grpc-encoding: gzip</c>; null sends them uncompressed.</summary>
    public string? RequestCompression { get; init; }

    /// <summary>Write options for the request messages.</summary>
    public WriteOptions? WriteOptions { get; init; }
}
