using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ControlPlane.Rpc;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Xunit;
using static ControlPlane.Rpc.Tests.ClientEchoService;

namespace ControlPlane.Rpc.Tests;

/// <summary>RpcChannel against servers that stay silent, misbehave, or record the request on the wire.</summary>
public sealed class ClientTransportTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task AsyncUnaryCall_ServerNeverAnswers_DeadlineExceededAndStreamReset()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await ClientRawServer.StartAsync(async http =>
        {
            http.RequestAborted.Register(() => aborted.TrySetResult());
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, http.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
        });
        using var channel = RpcChannel.ForAddress(server.Address);

        using var call = channel.AsyncUnaryCall(Unary, Bytes("x"), new CallOptions(Deadline: DateTime.UtcNow.AddMilliseconds(500)));
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        await started.Task.WaitAsync(Wait);
        await aborted.Task.WaitAsync(Wait);
        await Assert.ThrowsAsync<RpcException>(() => call.ResponseHeadersAsync.WaitAsync(Wait));
    }

    [Fact]
    public async Task AsyncDuplexStreamingCall_ServerNeverAnswers_MoveNextFailsDeadlineExceeded()
    {
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await ClientRawServer.StartAsync(async http =>
        {
            http.RequestAborted.Register(() => aborted.TrySetResult());
            await Task.Delay(Timeout.Infinite, http.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
        });
        using var channel = RpcChannel.ForAddress(server.Address);

        using var call = channel.AsyncDuplexStreamingCall(Duplex, new CallOptions(Deadline: DateTime.UtcNow.AddMilliseconds(500)));
        await call.RequestStream.WriteAsync(Bytes("ping")).WaitAsync(Wait);
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Wait));

        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        await aborted.Task.WaitAsync(Wait);
        var writeEx = await Assert.ThrowsAsync<RpcException>(() => call.RequestStream.WriteAsync(Bytes("late")).WaitAsync(Wait));
        Assert.Equal(StatusCode.DeadlineExceeded, writeEx.StatusCode);
    }

    [Fact]
    public async Task Dispose_ChannelDisposedDuringCall_CallFailsCancelledAndStreamReset()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await ClientRawServer.StartAsync(async http =>
        {
            http.RequestAborted.Register(() => aborted.TrySetResult());
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, http.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
        });
        var channel = RpcChannel.ForAddress(server.Address);
        using var call = channel.AsyncUnaryCall(Unary, Bytes("x"));
        await started.Task.WaitAsync(Wait);

        channel.Dispose();
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.Cancelled, ex.StatusCode);
        await aborted.Task.WaitAsync(Wait);
    }

    [Fact]
    public async Task AsyncUnaryCall_DeadlineAlreadyPassed_FailsWithoutSending()
    {
        var requests = 0;
        await using var server = await ClientRawServer.StartAsync(http =>
        {
            Interlocked.Increment(ref requests);
            return Task.CompletedTask;
        });
        using var channel = RpcChannel.ForAddress(server.Address);

        using var call = channel.AsyncUnaryCall(Unary, Bytes("x"), new CallOptions(Deadline: DateTime.UtcNow.AddSeconds(-1)));
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.Equal(0, Volatile.Read(ref requests));
    }

    [Fact]
    public async Task AsyncUnaryCall_RequestOnTheWire_CarriesProtocolHeadersMetadataAndFrame()
    {
        var captured = new TaskCompletionSource<(IHeaderDictionary Headers, string Protocol, byte[] Body)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await ClientRawServer.StartAsync(async http =>
        {
            using var body = new MemoryStream();
            await http.Request.Body.CopyToAsync(body);
            captured.TrySetResult((http.Request.Headers, http.Request.Protocol, body.ToArray()));
            http.Response.StatusCode = 503;
        });
        using var channel = RpcChannel.ForAddress(server.Address);
        var metadata = new Metadata { { "x-user", "alice" }, { "x-token-bin", new byte[] { 1, 2, 255 } } };

        var ex = await Assert.ThrowsAsync<RpcException>(() => channel.AsyncUnaryCall(
            Unary, Bytes("abc"), new CallOptions(Headers: metadata, Deadline: DateTime.UtcNow.AddMinutes(5))).ResponseAsync.WaitAsync(Wait));
        var (headers, protocol, frame) = await captured.Task.WaitAsync(Wait);

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Equal("HTTP/2", protocol);
        Assert.Equal("application/grpc", headers.ContentType.ToString());
        Assert.Equal("trailers", headers.TE.ToString());
        Assert.StartsWith("grpc-", headers.UserAgent.ToString(), StringComparison.Ordinal);
        Assert.Contains("gzip", headers["grpc-accept-encoding"].ToString(), StringComparison.Ordinal);
        Assert.Matches("^[0-9]{1,8}[HMSmun]$", headers["grpc-timeout"].ToString());
        Assert.Equal("alice", headers["x-user"].ToString());
        Assert.Equal(new byte[] { 1, 2, 255 }, Convert.FromBase64String(headers["x-token-bin"].ToString()));
        Assert.False(headers.ContainsKey("grpc-encoding"));
        Assert.Equal(0, frame[0]);
        Assert.Equal((uint)(frame.Length - 5), BinaryPrimitives.ReadUInt32BigEndian(frame.AsSpan(1)));
        Assert.Equal("abc", BytesValue.Parser.ParseFrom(frame.AsSpan(5)).Value.ToStringUtf8());
    }

    [Fact]
    public async Task AsyncUnaryCall_GzipRequest_SendsEncodingHeaderAndCompressedFrame()
    {
        var captured = new TaskCompletionSource<(string? Encoding, byte[] Body)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await ClientRawServer.StartAsync(async http =>
        {
            using var body = new MemoryStream();
            await http.Request.Body.CopyToAsync(body);
            captured.TrySetResult((http.Request.Headers["grpc-encoding"], body.ToArray()));
            http.Response.StatusCode = 503;
        });
        using var channel = RpcChannel.ForAddress(server.Address);
        var text = new string('a', 5000);

        await Assert.ThrowsAsync<RpcException>(() => channel.AsyncUnaryCall(Unary, Bytes(text), new CallOptions { RequestCompression = "gzip" }).ResponseAsync.WaitAsync(Wait));
        var (encoding, frame) = await captured.Task.WaitAsync(Wait);

        Assert.Equal("gzip", encoding);
        Assert.Equal(1, frame[0]);
        Assert.True(frame.Length < 1000, $"the frame of {frame.Length} bytes is not compressed");
        using var gzip = new GZipStream(new MemoryStream(frame, 5, frame.Length - 5), CompressionMode.Decompress);
        Assert.Equal(text, BytesValue.Parser.ParseFrom(gzip).Value.ToStringUtf8());
    }

    [Theory]
    [InlineData(404, StatusCode.Unimplemented)]
    [InlineData(401, StatusCode.Unauthenticated)]
    [InlineData(503, StatusCode.Unavailable)]
    [InlineData(500, StatusCode.Unknown)]
    public async Task AsyncUnaryCall_NonGrpcHttpStatus_MapsToStatusCode(int httpStatus, StatusCode expected)
    {
        await using var server = await ClientRawServer.StartAsync(http =>
        {
            http.Response.StatusCode = httpStatus;
            return Task.CompletedTask;
        });
        using var channel = RpcChannel.ForAddress(server.Address);

        var ex = await Assert.ThrowsAsync<RpcException>(() => channel.AsyncUnaryCall(Unary, Bytes("x")).ResponseAsync.WaitAsync(Wait));

        Assert.Equal(expected, ex.StatusCode);
        Assert.Contains(httpStatus.ToString(System.Globalization.CultureInfo.InvariantCulture), ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AsyncUnaryCall_OkWithHtmlContentType_FailsNamingTheContentType()
    {
        await using var server = await ClientRawServer.StartAsync(http =>
        {
            http.Response.ContentType = "text/html";
            return http.Response.WriteAsync("<html></html>");
        });
        using var channel = RpcChannel.ForAddress(server.Address);

        var ex = await Assert.ThrowsAsync<RpcException>(() => channel.AsyncUnaryCall(Unary, Bytes("x")).ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.Unknown, ex.StatusCode);
        Assert.Contains("text/html", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AsyncUnaryCall_TrailersOnlyResponse_ReportsStatusMessageAndTrailers()
    {
        await using var server = await ClientRawServer.StartAsync(http =>
        {
            http.Response.ContentType = "application/grpc";
            http.Response.Headers["grpc-status"] = "7";
            http.Response.Headers["grpc-message"] = "no %E2%98%BA for you";
            http.Response.Headers["x-reason"] = "policy";
            return Task.CompletedTask;
        });
        using var channel = RpcChannel.ForAddress(server.Address);

        using var call = channel.AsyncUnaryCall(Unary, Bytes("x"));
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.PermissionDenied, ex.StatusCode);
        Assert.Equal("no \u263A for you", ex.Status.Detail);
        Assert.Equal("policy", ex.Trailers.GetValue("x-reason"));
        Assert.Empty(await call.ResponseHeadersAsync.WaitAsync(Wait));
    }

    [Fact]
    public async Task AsyncServerStreamingCall_TrailersOnlyOk_EndsWithoutMessages()
    {
        await using var server = await ClientRawServer.StartAsync(http =>
        {
            http.Response.ContentType = "application/grpc";
            http.Response.Headers["grpc-status"] = "0";
            return Task.CompletedTask;
        });
        using var channel = RpcChannel.ForAddress(server.Address);

        using var call = channel.AsyncServerStreamingCall(ServerStream, Bytes("x"));

        Assert.False(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Wait));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task AsyncUnaryCall_ResponseWithoutGrpcStatus_FailsUnknown()
    {
        await using var server = await ClientRawServer.StartAsync(async http =>
        {
            http.Response.ContentType = "application/grpc";
            await http.Response.Body.WriteAsync(Frame(Bytes("y").ToByteArray()));
        });
        using var channel = RpcChannel.ForAddress(server.Address);

        var ex = await Assert.ThrowsAsync<RpcException>(() => channel.AsyncUnaryCall(Unary, Bytes("x")).ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.Unknown, ex.StatusCode);
        Assert.Contains("grpc-status", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AsyncUnaryCall_TwoResponseMessages_FailsInternal()
    {
        await using var server = await ClientRawServer.StartAsync(GrpcResponse(Frame(Bytes("a").ToByteArray()), Frame(Bytes("b").ToByteArray())));
        using var channel = RpcChannel.ForAddress(server.Address);

        var ex = await Assert.ThrowsAsync<RpcException>(() => channel.AsyncUnaryCall(Unary, Bytes("x")).ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.Internal, ex.StatusCode);
    }

    [Fact]
    public async Task AsyncUnaryCall_GzipResponseMessage_Decompressed()
    {
        var text = new string('g', 20_000);
        using var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            Bytes(text).WriteTo(gzip);
        }

        var frame = Frame(compressed.ToArray());
        frame[0] = 1;
        var acceptEncoding = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var respond = GrpcResponse(frame);
        await using var server = await ClientRawServer.StartAsync(http =>
        {
            acceptEncoding.TrySetResult(http.Request.Headers["grpc-accept-encoding"]);
            http.Response.Headers["grpc-encoding"] = "gzip";
            return respond(http);
        });
        using var channel = RpcChannel.ForAddress(server.Address);

        var response = await channel.AsyncUnaryCall(Unary, Bytes("x")).ResponseAsync.WaitAsync(Wait);

        Assert.Equal(text, response.Value.ToStringUtf8());
        Assert.Contains("gzip", await acceptEncoding.Task.WaitAsync(Wait), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AsyncUnaryCall_CompressedFlagWithoutEncoding_FailsInternal()
    {
        var frame = Frame(Bytes("a").ToByteArray());
        frame[0] = 1;
        await using var server = await ClientRawServer.StartAsync(GrpcResponse(frame));
        using var channel = RpcChannel.ForAddress(server.Address);

        var ex = await Assert.ThrowsAsync<RpcException>(() => channel.AsyncUnaryCall(Unary, Bytes("x")).ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.Internal, ex.StatusCode);
        Assert.Contains("grpc-encoding", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AsyncServerStreamingCall_ResponseSplitAcrossWrites_ReassemblesMessages()
    {
        var first = Frame(Bytes(new string('1', 10_000)).ToByteArray());
        var second = Frame(Bytes("2").ToByteArray());
        byte[] all = [.. first, .. second];
        await using var server = await ClientRawServer.StartAsync(async http =>
        {
            http.Response.ContentType = "application/grpc";
            foreach (var chunk in all.Chunk(7))
            {
                await http.Response.Body.WriteAsync(chunk);
                await http.Response.Body.FlushAsync();
            }

            http.Response.AppendTrailer("grpc-status", "0");
        });
        using var channel = RpcChannel.ForAddress(server.Address);

        using var call = channel.AsyncServerStreamingCall(ServerStream, Bytes("x"));
        var received = new List<string>();
        await foreach (var message in call.ResponseStream.ReadAllAsync().WithCancellation(CancellationToken.None))
        {
            received.Add(message.Value.ToStringUtf8());
        }

        Assert.Equal([new string('1', 10_000), "2"], received);
    }

    [Fact]
    public async Task AsyncUnaryCall_NothingListening_FailsUnavailable()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var channel = RpcChannel.ForAddress($"http://127.0.0.1:{port}");

        var ex = await Assert.ThrowsAsync<RpcException>(() => channel.AsyncUnaryCall(Unary, Bytes("x")).ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
    }

    [Fact]
    public async Task AsyncUnaryCall_TlsWithValidationCallback_Succeeds()
    {
        using var certificate = SelfSignedCertificate();
        await using var server = RpcServer.Create(new RpcServerOptions(), Definition()).ListenTls(System.Net.IPAddress.Loopback, 0, certificate);
        await server.StartAsync();
        var seen = 0;
        var options = new RpcChannelOptions
        {
            ServerCertificateValidation = (_, cert, _, _) =>
            {
                Interlocked.Increment(ref seen);
                return cert is not null && cert.GetCertHashString() == certificate.GetCertHashString();
            },
        };
        using var channel = RpcChannel.ForAddress(server.Addresses[0].ToString(), options);

        var response = await channel.AsyncUnaryCall(Unary, Bytes("secure")).ResponseAsync.WaitAsync(Wait);

        Assert.Equal("secure", response.Value.ToStringUtf8());
        Assert.True(Volatile.Read(ref seen) > 0);
    }

    [Fact]
    public async Task AsyncUnaryCall_TlsCertificateRejected_FailsUnavailable()
    {
        using var certificate = SelfSignedCertificate();
        await using var server = RpcServer.Create(new RpcServerOptions(), Definition()).ListenTls(System.Net.IPAddress.Loopback, 0, certificate);
        await server.StartAsync();
        using var channel = RpcChannel.ForAddress(server.Addresses[0].ToString(), new RpcChannelOptions { ServerCertificateValidation = (_, _, _, _) => false });

        var ex = await Assert.ThrowsAsync<RpcException>(() => channel.AsyncUnaryCall(Unary, Bytes("x")).ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
    }

    [Theory]
    [InlineData("127.0.0.1:5000")]
    [InlineData("ftp://127.0.0.1:5000")]
    [InlineData("not a uri")]
    public void ForAddress_InvalidAddress_ThrowsNamingTheAddress(string address)
    {
        var ex = Assert.Throws<ArgumentException>(() => RpcChannel.ForAddress(address));

        Assert.Equal("address", ex.ParamName);
        Assert.Contains("http://", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ForAddress_InvalidOptions_ThrowsNamingTheOption()
    {
        Assert.Contains("MaxReceiveMessageSize", Assert.Throws<ArgumentException>(() => RpcChannel.ForAddress("http://127.0.0.1:1", new RpcChannelOptions { MaxReceiveMessageSize = 0 })).Message, StringComparison.Ordinal);
        Assert.Contains("MaxSendMessageSize", Assert.Throws<ArgumentException>(() => RpcChannel.ForAddress("http://127.0.0.1:1", new RpcChannelOptions { MaxSendMessageSize = -1 })).Message, StringComparison.Ordinal);
        Assert.Contains("KeepAlivePingDelay", Assert.Throws<ArgumentException>(() => RpcChannel.ForAddress("http://127.0.0.1:1", new RpcChannelOptions { KeepAlivePingDelay = TimeSpan.FromMilliseconds(10) })).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AsyncUnaryCall_BadCallOptions_ThrowsNamingTheField()
    {
        using var channel = RpcChannel.ForAddress("http://127.0.0.1:1");

        Assert.Contains("RequestCompression", Assert.Throws<ArgumentException>(() => channel.AsyncUnaryCall(Unary, Bytes("x"), new CallOptions { RequestCompression = "br" })).Message, StringComparison.Ordinal);
        Assert.Contains("grpc-timeout", Assert.Throws<ArgumentException>(() => channel.AsyncUnaryCall(Unary, Bytes("x"), new CallOptions(Headers: new Metadata { { "grpc-timeout", "1S" } }))).Message, StringComparison.Ordinal);
        Assert.Contains(Duplex.FullName, Assert.Throws<ArgumentException>(() => channel.AsyncUnaryCall(Duplex, Bytes("x"))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dispose_ChannelDisposed_NewCallsThrowObjectDisposed()
    {
        var channel = RpcChannel.ForAddress("http://127.0.0.1:1");
        channel.Dispose();

        Assert.Throws<ObjectDisposedException>(() => channel.AsyncUnaryCall(Unary, Bytes("x")));
    }

    private static RequestDelegate GrpcResponse(params byte[][] frames) => async http =>
    {
        http.Response.ContentType = "application/grpc";
        foreach (var frame in frames)
        {
            await http.Response.Body.WriteAsync(frame);
        }

        http.Response.AppendTrailer("grpc-status", "0");
    };

    private static byte[] Frame(byte[] payload)
    {
        var frame = new byte[5 + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(frame, 5);
        return frame;
    }

    private static X509Certificate2 SelfSignedCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null);
    }
}
