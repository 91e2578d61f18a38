using System.Net;
using ControlPlane.Rpc.Internal;
using Google.Protobuf;

namespace ControlPlane.Rpc.Tests;

/// <summary>What a raw HTTP/2 gRPC call returned: HTTP status, headers, frames, status and trailers.</summary>
public sealed class ProtocolCallResult
{
    public required HttpStatusCode HttpStatus { get; init; }

    public required Dictionary<string, string> Headers { get; init; }

    public required Dictionary<string, string> Trailers { get; init; }

    public required List<(bool Compressed, byte[] Payload)> Frames { get; init; }

    /// <summary>True when grpc-status came in the HEADERS frame (Trailers-Only).</summary>
    public bool TrailersOnly => Headers.ContainsKey("grpc-status");

    public StatusCode StatusCode
    {
        get
        {
            var value = Trailers.GetValueOrDefault("grpc-status") ?? Headers.GetValueOrDefault("grpc-status")
                ?? throw new InvalidOperationException("No grpc-status in headers or trailers.");
            return (StatusCode)int.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    public string StatusMessage => PercentEncoding.Decode(Trailers.GetValueOrDefault("grpc-message") ?? Headers.GetValueOrDefault("grpc-message") ?? string.Empty);

    public T Message<T>(int index)
        where T : IMessage<T>, new()
    {
        var (compressed, payload) = Frames[index];
        var parser = new MessageParser<T>(() => new T());
        return parser.ParseFrom(compressed ? ProtocolFrames.Gunzip(payload) : payload);
    }
}
