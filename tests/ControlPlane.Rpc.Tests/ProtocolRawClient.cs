using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;

namespace ControlPlane.Rpc.Tests;

/// <summary>
/// A bare HTTP/2 (h2c) client speaking gRPC by hand, independent of the project's own client, so
/// server tests check the wire and not our client's interpretation of it.
/// </summary>
public sealed class ProtocolRawClient : IDisposable
{
    public const string Service = "controlplane.rpctest.TestService";

    private readonly Uri _address;
    private readonly HttpClient _http;
    private readonly List<Socket> _sockets = new();

    public ProtocolRawClient(Uri address)
    {
        _address = address;
        Handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = false,
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                lock (_sockets)
                {
                    _sockets.Add(socket);
                }

                return new NetworkStream(socket, ownsSocket: true);
            },
        };
        _http = new HttpClient(Handler)
        {
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = System.Threading.Timeout.InfiniteTimeSpan,
        };
    }

    public SocketsHttpHandler Handler { get; }

    public static HttpRequestMessage CreateRequest(Uri address, string method, HttpContent content, IEnumerable<KeyValuePair<string, string>>? headers = null, string contentType = "application/grpc")
    {
        var path = method.StartsWith('/') ? method : "/" + Service + "/" + method;
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(address, path))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        request.Headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
        if (headers is not null)
        {
            foreach (var (key, value) in headers)
            {
                request.Headers.TryAddWithoutValidation(key, value);
            }
        }

        return request;
    }

    /// <summary>Sends a whole request body at once and reads the whole response.</summary>
    public async Task<ProtocolCallResult> CallAsync(string method, byte[] body, IEnumerable<KeyValuePair<string, string>>? headers = null, string contentType = "application/grpc", CancellationToken cancellationToken = default)
    {
        var content = new ByteArrayContent(body);
        using var request = CreateRequest(_address, method, content, headers, contentType);
        using var response = await SendAsync(request, cancellationToken);
        return await ReadToEndAsync(response, cancellationToken);
    }

    public Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken = default) =>
        _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);

    public HttpRequestMessage CreateRequest(string method, HttpContent content, IEnumerable<KeyValuePair<string, string>>? headers = null) =>
        CreateRequest(_address, method, content, headers);

    /// <summary>Reads the next frame of a response body; null at the end of the body.</summary>
    public static async Task<(bool Compressed, byte[] Payload)?> ReadFrameAsync(Stream body, CancellationToken cancellationToken = default)
    {
        var header = new byte[5];
        var read = await ReadAtLeastAsync(body, header, cancellationToken);
        if (read == 0)
        {
            return null;
        }

        if (read < 5)
        {
            throw new InvalidDataException("Response ended inside a frame header.");
        }

        var payload = new byte[BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(1))];
        if (await ReadAtLeastAsync(body, payload, cancellationToken) != payload.Length)
        {
            throw new InvalidDataException("Response ended inside a frame.");
        }

        return (header[0] == 1, payload);
    }

    public static async Task<ProtocolCallResult> ReadToEndAsync(HttpResponseMessage response, CancellationToken cancellationToken = default)
    {
        var frames = new List<(bool, byte[])>();
        await using (var body = await response.Content.ReadAsStreamAsync(cancellationToken))
        {
            while (await ReadFrameAsync(body, cancellationToken) is { } frame)
            {
                frames.Add(frame);
            }
        }

        return new ProtocolCallResult
        {
            HttpStatus = response.StatusCode,
            Headers = Flatten(response.Headers, response.Content.Headers),
            Trailers = Flatten(response.TrailingHeaders, null),
            Frames = frames,
        };
    }

    /// <summary>Closes the TCP connections under any open streams, as a crashed client would.</summary>
    public void DropConnections()
    {
        lock (_sockets)
        {
            foreach (var socket in _sockets)
            {
                socket.Close(0);
            }
        }
    }

    public void Dispose() => _http.Dispose();

    private static Dictionary<string, string> Flatten(HttpHeaders headers, HttpHeaders? more)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var header in headers.NonValidated)
        {
            result[header.Key] = string.Join(",", header.Value);
        }

        if (more is not null)
        {
            foreach (var header in more.NonValidated)
            {
                result[header.Key] = string.Join(",", header.Value);
            }
        }

        return result;
    }

    private static async Task<int> ReadAtLeastAsync(Stream stream, byte[] buffer, CancellationToken cancellationToken)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(total), cancellationToken);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }
}
