using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ControlPlane.Rpc.Tests.Protos;
using Google.Protobuf;

namespace ControlPlane.Rpc.Tests;

/// <summary>The server over a real Kestrel socket, driven by raw HTTP/2 requests.</summary>
public sealed class ServerCallTests : IAsyncLifetime
{
    private ServerTestHost _host = null!;

    private ProtocolRawClient Client => _host.Client;

    public async Task InitializeAsync() => _host = await ServerTestHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Unary_Echo_ReturnsHeadersMessageAndOkTrailers()
    {
        var result = await Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Text = "hello" }));

        Assert.Equal(HttpStatusCode.OK, result.HttpStatus);
        Assert.Equal("application/grpc", result.Headers["content-type"]);
        Assert.Contains("gzip", result.Headers["grpc-accept-encoding"], StringComparison.Ordinal);
        Assert.False(result.TrailersOnly);
        Assert.Equal("0", result.Trailers["grpc-status"]);
        Assert.Single(result.Frames);
        Assert.False(result.Frames[0].Compressed);
        Assert.Equal("hello", result.Message<EchoResponse>(0).Text);
    }

    [Fact]
    public async Task Unary_ContentTypeGrpcProto_Accepted()
    {
        var result = await Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Text = "p" }), contentType: "application/grpc+proto");

        Assert.Equal(StatusCode.OK, result.StatusCode);
    }

    [Fact]
    public async Task Unary_HandlerThrows_UnknownTrailersOnlyWithoutExceptionText()
    {
        var result = await Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Text = "throw" }));

        Assert.Equal(StatusCode.Unknown, result.StatusCode);
        Assert.True(result.TrailersOnly);
        Assert.Empty(result.Frames);
        Assert.DoesNotContain("secret internals", result.StatusMessage, StringComparison.Ordinal);
        await _host.AssertIdleAsync();
    }

    [Fact]
    public async Task Unary_HandlerThrowsWithDetailedErrors_DetailIncludesExceptionMessage()
    {
        await using var host = await ServerTestHost.StartAsync(o => o.EnableDetailedErrors = true);

        var result = await host.Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Text = "throw" }));

        Assert.Equal(StatusCode.Unknown, result.StatusCode);
        Assert.Contains("secret internals", result.StatusMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unary_RpcException_StatusPercentEncodedWithAsciiAndBinaryTrailers()
    {
        var result = await Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Text = "rpc-error" }));

        Assert.Equal(StatusCode.InvalidArgument, result.StatusCode);
        Assert.Equal("text: must not be 'rpc-error' — ünïcode 100%", result.StatusMessage);
        Assert.Contains("%25", result.Headers["grpc-message"], StringComparison.Ordinal);
        Assert.All(result.Headers["grpc-message"], c => Assert.InRange(c, ' ', '~'));
        Assert.Equal("bad input", result.Headers["x-reason"]);
        Assert.Equal(new byte[] { 0, 1, 255 }, Convert.FromBase64String(result.Headers["x-detail-bin"]));
    }

    [Fact]
    public async Task Unary_HandlerSetsErrorStatus_NoMessageAndStatusWithTrailers()
    {
        var result = await Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Text = "set-status" }));

        Assert.Equal(StatusCode.NotFound, result.StatusCode);
        Assert.Equal("no such thing", result.StatusMessage);
        Assert.Empty(result.Frames);
        Assert.Equal("nowhere", result.Headers["x-where"]);
    }

    [Fact]
    public async Task Unary_AsciiAndBinaryMetadata_EchoedInHeadersAndTrailers()
    {
        var binary = new byte[] { 0xAB, 0xAB, 0xAB, 0x00, 0xFF };
        var headers = new Dictionary<string, string>
        {
            ["x-text"] = "some value",
            ["x-data-bin"] = Convert.ToBase64String(binary).TrimEnd('='),
            ["grpc-timeout"] = "1H",
        };

        var result = await Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Text = "echo-metadata" }), headers);

        Assert.Equal(StatusCode.OK, result.StatusCode);
        Assert.Equal("/controlplane.rpctest.TestService/Unary|deadline", result.Message<EchoResponse>(0).Text);
        Assert.Equal("some value", result.Headers["x-text"]);
        Assert.Equal(binary, Convert.FromBase64String(result.Headers["x-data-bin"]));
        Assert.Equal("some value", result.Trailers["tx-text"]);
        Assert.Equal(binary, Convert.FromBase64String(result.Trailers["tx-data-bin"]));
    }

    [Fact]
    public async Task Unary_NoRequestMessage_Internal()
    {
        var result = await Client.CallAsync("Unary", Array.Empty<byte>());

        Assert.Equal(StatusCode.Internal, result.StatusCode);
        Assert.Contains("exactly one request message", result.StatusMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unary_TwoRequestMessages_Internal()
    {
        var frame = ProtocolFrames.Frame(new EchoRequest { Text = "a" });

        var result = await Client.CallAsync("Unary", ProtocolFrames.Concat(frame, frame));

        Assert.Equal(StatusCode.Internal, result.StatusCode);
        Assert.False(_host.Probe.Started.Task.IsCompleted);
    }

    [Theory]
    [InlineData("/controlplane.rpctest.TestService/Unhandled")]
    [InlineData("/controlplane.rpctest.TestService/NoSuchMethod")]
    [InlineData("/no.such.Service/Method")]
    public async Task Call_UnimplementedPath_UnimplementedTrailersOnly(string path)
    {
        var result = await Client.CallAsync(path, ProtocolFrames.Frame(new EchoRequest()));

        Assert.Equal(HttpStatusCode.OK, result.HttpStatus);
        Assert.True(result.TrailersOnly);
        Assert.Equal(StatusCode.Unimplemented, result.StatusCode);
    }

    [Fact]
    public async Task Call_WrongContentType_Http415()
    {
        var result = await Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest()), contentType: "application/json");

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, result.HttpStatus);
        Assert.Contains("application/grpc", result.StatusMessage, StringComparison.Ordinal);
        Assert.False(_host.Probe.Started.Task.IsCompleted);
    }

    [Fact]
    public async Task Call_GetInsteadOfPost_Http405()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_host.Server.Addresses[0], "/controlplane.rpctest.TestService/Unary"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        using var response = await Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
    }

    [Fact]
    public async Task Call_WithoutTeTrailers_InternalNamingTheHeader()
    {
        using var request = ProtocolRawClient.CreateRequest(_host.Server.Addresses[0], "Unary", new ByteArrayContent(ProtocolFrames.Frame(new EchoRequest())));
        request.Headers.TE.Clear();
        using var response = await Client.SendAsync(request);
        var result = await ProtocolRawClient.ReadToEndAsync(response);

        Assert.Equal(StatusCode.Internal, result.StatusCode);
        Assert.Contains("te: trailers", result.StatusMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientStreaming_MessagesSentOneByOne_AggregatedResponse()
    {
        var content = new ProtocolStreamContent();
        using var request = Client.CreateRequest("ClientStream", content);
        var responseTask = Client.SendAsync(request);
        foreach (var text in new[] { "a", "b", "c" })
        {
            await content.WriteAsync(ProtocolFrames.Frame(new EchoRequest { Text = text }));
        }

        content.Complete();
        using var response = await responseTask.WaitAsync(ServerTestHost.Timeout);
        var result = await ProtocolRawClient.ReadToEndAsync(response);

        Assert.Equal(StatusCode.OK, result.StatusCode);
        var message = result.Message<EchoResponse>(0);
        Assert.Equal("abc", message.Text);
        Assert.Equal(3, message.Index);
    }

    [Fact]
    public async Task ServerStreaming_Count_StreamsEveryMessageThenOk()
    {
        var result = await Client.CallAsync("ServerStream", ProtocolFrames.Frame(new EchoRequest { Text = "s", Count = 5 }));

        Assert.Equal(StatusCode.OK, result.StatusCode);
        Assert.Equal(new[] { 0, 1, 2, 3, 4 }, Enumerable.Range(0, result.Frames.Count).Select(i => result.Message<EchoResponse>(i).Index));
    }

    [Fact]
    public async Task ServerStreaming_NoMessages_TrailersOnlyOk()
    {
        var result = await Client.CallAsync("ServerStream", ProtocolFrames.Frame(new EchoRequest { Count = 0 }));

        Assert.True(result.TrailersOnly);
        Assert.Equal(StatusCode.OK, result.StatusCode);
    }

    [Fact]
    public async Task ServerStreaming_ErrorAfterMessages_MessagesThenStatusInTrailers()
    {
        var result = await Client.CallAsync("ServerStream", ProtocolFrames.Frame(new EchoRequest { Text = "fail-after", Count = 2 }));

        Assert.False(result.TrailersOnly);
        Assert.Equal(2, result.Frames.Count);
        Assert.Equal(StatusCode.Aborted, result.StatusCode);
        Assert.Equal("stopped after messages", result.StatusMessage);
    }

    [Fact]
    public async Task Duplex_PingPong_EachResponseArrivesBeforeNextRequest()
    {
        var content = new ProtocolStreamContent();
        using var request = Client.CreateRequest("Duplex", content);
        var responseTask = Client.SendAsync(request);
        await content.WriteAsync(ProtocolFrames.Frame(new EchoRequest { Text = "one" }));
        using var response = await responseTask.WaitAsync(ServerTestHost.Timeout);
        await using var body = await response.Content.ReadAsStreamAsync();

        var first = await ProtocolRawClient.ReadFrameAsync(body).WaitAsync(ServerTestHost.Timeout);
        await content.WriteAsync(ProtocolFrames.Frame(new EchoRequest { Text = "two" }));
        var second = await ProtocolRawClient.ReadFrameAsync(body).WaitAsync(ServerTestHost.Timeout);
        content.Complete();
        var end = await ProtocolRawClient.ReadFrameAsync(body).WaitAsync(ServerTestHost.Timeout);

        Assert.Equal("one", EchoResponse.Parser.ParseFrom(first!.Value.Payload).Text);
        Assert.Equal("two", EchoResponse.Parser.ParseFrom(second!.Value.Payload).Text);
        Assert.Null(end);
        Assert.Equal("0", string.Join(",", response.TrailingHeaders.GetValues("grpc-status")));
    }

    [Fact]
    public async Task Unary_GzipRequest_Decoded()
    {
        var headers = new Dictionary<string, string> { ["grpc-encoding"] = "gzip" };

        var result = await Client.CallAsync("Unary", ProtocolFrames.GzipFrame(new EchoRequest { Text = "zipped" }), headers);

        Assert.Equal(StatusCode.OK, result.StatusCode);
        Assert.Equal("zipped", result.Message<EchoResponse>(0).Text);
    }

    [Fact]
    public async Task Unary_UnsupportedRequestEncoding_UnimplementedWithAcceptEncoding()
    {
        var headers = new Dictionary<string, string> { ["grpc-encoding"] = "snappy" };

        var result = await Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest()), headers);

        Assert.Equal(StatusCode.Unimplemented, result.StatusCode);
        Assert.Contains("snappy", result.StatusMessage, StringComparison.Ordinal);
        Assert.Contains("gzip", result.Headers["grpc-accept-encoding"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unary_HandlerAsksGzipAndClientAccepts_ResponseCompressed()
    {
        var payload = ByteString.CopyFrom(new byte[10000]);
        var headers = new Dictionary<string, string> { ["grpc-accept-encoding"] = "identity, gzip" };

        var result = await Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Text = "compress", Payload = payload }), headers);

        Assert.Equal(StatusCode.OK, result.StatusCode);
        Assert.Equal("gzip", result.Headers["grpc-encoding"]);
        Assert.True(result.Frames[0].Compressed);
        Assert.True(result.Frames[0].Payload.Length < 1000);
        Assert.Equal(payload, result.Message<EchoResponse>(0).Payload);
    }

    [Fact]
    public async Task Unary_HandlerAsksGzipButClientDoesNotAccept_ResponseUncompressed()
    {
        var result = await Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Text = "compress" }));

        Assert.Equal(StatusCode.OK, result.StatusCode);
        Assert.False(result.Headers.ContainsKey("grpc-encoding"));
        Assert.False(result.Frames[0].Compressed);
    }

    [Fact]
    public async Task ServerStreaming_NoCompressOnOneMessage_OnlyThatMessageUncompressed()
    {
        var headers = new Dictionary<string, string> { ["grpc-accept-encoding"] = "gzip" };

        var result = await Client.CallAsync("ServerStream", ProtocolFrames.Frame(new EchoRequest { Text = "no-compress-second", Count = 3 }), headers);

        Assert.Equal(StatusCode.OK, result.StatusCode);
        Assert.Equal(new[] { true, false, true }, result.Frames.Select(f => f.Compressed));
        Assert.Equal(1, result.Message<EchoResponse>(1).Index);
    }

    [Fact]
    public async Task Unary_ServerDefaultCompression_AppliedWhenAccepted()
    {
        await using var host = await ServerTestHost.StartAsync(o => o.ResponseCompression = "gzip");
        var headers = new Dictionary<string, string> { ["grpc-accept-encoding"] = "gzip" };

        var result = await host.Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Text = "plain" }), headers);

        Assert.True(result.Frames[0].Compressed);
        Assert.Equal("plain", result.Message<EchoResponse>(0).Text);
    }

    [Fact]
    public async Task Unary_ResponseOverSendLimit_ResourceExhausted()
    {
        await using var host = await ServerTestHost.StartAsync(o => o.MaxSendMessageSize = 100);

        var result = await host.Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Payload = ByteString.CopyFrom(new byte[500]) }));

        Assert.Equal(StatusCode.ResourceExhausted, result.StatusCode);
        Assert.Empty(result.Frames);
    }

    [Fact]
    public async Task Unary_InvalidTimeoutHeader_Ignored()
    {
        var headers = new Dictionary<string, string> { ["grpc-timeout"] = "soon" };

        var result = await Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Text = "echo-metadata" }), headers);

        Assert.Equal(StatusCode.OK, result.StatusCode);
        Assert.EndsWith("|no-deadline", result.Message<EchoResponse>(0).Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unary_OverTls_Succeeds()
    {
        using var key = RSA.Create(2048);
        var certRequest = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var ephemeral = certRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        using var certificate = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pfx), null);
        await using var server = RpcServer.Create(new RpcServerOptions(), ServerTestHost.BuildService(new ServerHandlerProbe()))
            .ListenTls(IPAddress.Loopback, 0, certificate);
        await server.StartAsync();
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && cert.GetCertHashString() == certificate.GetCertHashString();
        using var http = new HttpClient(handler);
        using var request = ProtocolRawClient.CreateRequest(server.Addresses[0], "Unary", new ByteArrayContent(ProtocolFrames.Frame(new EchoRequest { Text = "secure" })));

        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var result = await ProtocolRawClient.ReadToEndAsync(response);

        Assert.Equal("https", server.Addresses[0].Scheme);
        Assert.Equal(StatusCode.OK, result.StatusCode);
        Assert.Equal("secure", result.Message<EchoResponse>(0).Text);
    }
}
