using ControlPlane.Rpc;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Xunit;
using static ControlPlane.Rpc.Tests.ClientEchoService;

namespace ControlPlane.Rpc.Tests;

/// <summary>RpcChannel against a real gRPC server; run against grpcio and against our own server.</summary>
public abstract class ClientCallTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    protected ClientCallTests(string address)
    {
        Channel = RpcChannel.ForAddress(address);
        Address = address;
    }

    protected RpcChannel Channel { get; }

    protected string Address { get; }

    public void Dispose()
    {
        Channel.Dispose();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task AsyncUnaryCall_Echo_ReturnsRequestAndOkStatus()
    {
        using var call = Channel.AsyncUnaryCall(Unary, Bytes("hello"));

        var response = await call.ResponseAsync.WaitAsync(Wait);

        Assert.Equal("hello", response.Value.ToStringUtf8());
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task AsyncUnaryCall_LargeMessages_RoundTripIntact()
    {
        var payload = new byte[1_500_000];
        new Random(7).NextBytes(payload);
        var options = new RpcChannelOptions { MaxReceiveMessageSize = 8 * 1024 * 1024 };
        using var channel = RpcChannel.ForAddress(Address, options);

        var response = await channel.AsyncUnaryCall(Unary, new BytesValue { Value = ByteString.CopyFrom(payload) }).ResponseAsync.WaitAsync(Wait);

        Assert.Equal(payload, response.Value.ToByteArray());
    }

    [Fact]
    public async Task AsyncUnaryCall_ManyConcurrentCalls_AllSucceed()
    {
        var calls = Enumerable.Range(0, 200).Select(i => Channel.AsyncUnaryCall(Unary, Bytes("m" + i)).ResponseAsync).ToArray();

        var responses = await Task.WhenAll(calls).WaitAsync(Wait);

        Assert.Equal(Enumerable.Range(0, 200).Select(i => "m" + i), responses.Select(r => r.Value.ToStringUtf8()));
    }

    [Fact]
    public async Task AsyncClientStreamingCall_SeveralMessages_ServerJoinsThemInOrder()
    {
        using var call = Channel.AsyncClientStreamingCall(ClientStream);

        foreach (var part in new[] { "a", "bb", "ccc" })
        {
            await call.RequestStream.WriteAsync(Bytes(part)).WaitAsync(Wait);
        }

        await call.RequestStream.CompleteAsync();
        var response = await call.ResponseAsync.WaitAsync(Wait);

        Assert.Equal("abbccc", response.Value.ToStringUtf8());
    }

    [Fact]
    public async Task AsyncServerStreamingCall_CountOfFive_ReadsFiveThenEndsOk()
    {
        using var call = Channel.AsyncServerStreamingCall(ServerStream, Bytes("r"), new CallOptions(Headers: new Metadata { { "x-count", "5" } }));

        var received = new List<string>();
        while (await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Wait))
        {
            received.Add(call.ResponseStream.Current.Value.ToStringUtf8());
        }

        Assert.Equal(["r0", "r1", "r2", "r3", "r4"], received);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task AsyncServerStreamingCall_ServerFailsAfterMessages_ThrowsAfterDeliveringThem()
    {
        var headers = new Metadata { { "x-count", "2" }, { "x-fail-code", "9" }, { "x-fail-message", "stream broke" } };
        using var call = Channel.AsyncServerStreamingCall(ServerStream, Bytes("s"), new CallOptions(Headers: headers));

        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Wait));
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Wait));
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Wait));

        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Equal("stream broke", ex.Status.Detail);
    }

    [Fact]
    public async Task AsyncDuplexStreamingCall_PingPong_EachResponseArrivesBeforeTheNextRequest()
    {
        using var call = Channel.AsyncDuplexStreamingCall(Duplex);

        foreach (var ping in new[] { "one", "two", "three", "four" })
        {
            await call.RequestStream.WriteAsync(Bytes(ping)).WaitAsync(Wait);
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Wait));
            Assert.Equal(ping, call.ResponseStream.Current.Value.ToStringUtf8());
        }

        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Wait));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task AsyncDuplexStreamingCall_BufferHint_EveryMessageArrivesInOrder()
    {
        // On a client the hint only skips the flush: the connection may still send the bytes at once. What must hold
        // is that nothing written with it is lost or reordered, also when the call ends right after such a write.
        using var call = Channel.AsyncDuplexStreamingCall(Duplex);
        var texts = Enumerable.Range(0, 20).Select(i => $"m{i}").ToList();
        for (var i = 0; i < texts.Count; i++)
        {
            call.RequestStream.WriteOptions = i % 5 == 4 ? null : new WriteOptions(BufferHint: true);
            await call.RequestStream.WriteAsync(Bytes(texts[i])).WaitAsync(Wait);
        }

        call.RequestStream.WriteOptions = new WriteOptions(BufferHint: true);
        await call.RequestStream.WriteAsync(Bytes("last")).WaitAsync(Wait);
        await call.RequestStream.CompleteAsync();

        var received = new List<string>();
        while (await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Wait))
        {
            received.Add(call.ResponseStream.Current.Value.ToStringUtf8());
        }

        Assert.Equal([.. texts, "last"], received);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task AsyncDuplexStreamingCall_CompleteWithoutMessages_EndsOkWithNoResponses()
    {
        using var call = Channel.AsyncDuplexStreamingCall(Duplex);

        await call.RequestStream.CompleteAsync();

        Assert.False(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Wait));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task AsyncUnaryCall_ServerFailsWithSpecialMessage_ThrowsWithDecodedDetail()
    {
        const string detail = "\t\ntest with whitespace\r\nand Unicode BMP \u263A and non-BMP \U0001F608\t\n";
        var headers = new Metadata { { "x-fail-code", "2" }, { "x-fail-message-bin", System.Text.Encoding.UTF8.GetBytes(detail) } };
        using var call = Channel.AsyncUnaryCall(Unary, Bytes("x"), new CallOptions(Headers: headers));

        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.Unknown, ex.StatusCode);
        Assert.Equal(detail, ex.Status.Detail);
        Assert.Equal(ex.Status, call.GetStatus());
    }

    [Fact]
    public async Task AsyncUnaryCall_CustomMetadata_EchoedInHeadersAndTrailers()
    {
        var binary = new byte[] { 0xab, 0xab, 0xab, 0x00, 0xff };
        var headers = new Metadata { { "x-echo-initial", "test_initial_metadata_value" }, { "x-echo-trailing-bin", binary } };
        using var call = Channel.AsyncUnaryCall(Unary, Bytes("m"), new CallOptions(Headers: headers));

        await call.ResponseAsync.WaitAsync(Wait);
        var responseHeaders = await call.ResponseHeadersAsync.WaitAsync(Wait);

        Assert.Equal("test_initial_metadata_value", responseHeaders.GetValue("x-echo-initial"));
        Assert.Equal(binary, responseHeaders.GetValueBytes("x-echo-trailing-bin"));
        Assert.Equal("test_initial_metadata_value", call.GetTrailers().GetValue("x-echo-initial"));
        Assert.Equal(binary, call.GetTrailers().GetValueBytes("x-echo-trailing-bin"));
    }

    [Fact]
    public async Task AsyncUnaryCall_FailureWithMetadata_ExceptionCarriesTrailers()
    {
        var headers = new Metadata { { "x-echo-reason", "quota" }, { "x-fail-code", "8" }, { "x-fail-message", "over quota" } };
        using var call = Channel.AsyncUnaryCall(Unary, Bytes("m"), new CallOptions(Headers: headers));

        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(Wait));

        Assert.True(ex.StatusCode == StatusCode.ResourceExhausted, ex.Status.ToString());
        Assert.Equal("quota", ex.Trailers.GetValue("x-echo-reason"));
    }

    [Fact]
    public async Task AsyncUnaryCall_GzipRequestCompression_ServerDecodesMessage()
    {
        var text = new string('z', 10_000);
        var options = new CallOptions { RequestCompression = "gzip" };

        var compressed = await Channel.AsyncUnaryCall(Unary, Bytes(text), options).ResponseAsync.WaitAsync(Wait);
        var uncompressed = await Channel.AsyncUnaryCall(Unary, Bytes(text), options with { WriteOptions = new WriteOptions(NoCompress: true) }).ResponseAsync.WaitAsync(Wait);

        Assert.Equal(text, compressed.Value.ToStringUtf8());
        Assert.Equal(text, uncompressed.Value.ToStringUtf8());
    }

    [Fact]
    public async Task AsyncClientStreamingCall_GzipWithOneUncompressedMessage_ServerDecodesAll()
    {
        using var call = Channel.AsyncClientStreamingCall(ClientStream, new CallOptions { RequestCompression = "gzip" });

        await call.RequestStream.WriteAsync(Bytes("compressed-")).WaitAsync(Wait);
        call.RequestStream.WriteOptions = new WriteOptions(NoCompress: true);
        await call.RequestStream.WriteAsync(Bytes("plain")).WaitAsync(Wait);
        await call.RequestStream.CompleteAsync();

        Assert.Equal("compressed-plain", (await call.ResponseAsync.WaitAsync(Wait)).Value.ToStringUtf8());
    }

    [Fact]
    public async Task AsyncUnaryCall_ServerCompressesResponse_ClientDecompresses()
    {
        var text = new string('q', 50_000);
        using var call = Channel.AsyncUnaryCall(Unary, Bytes(text), new CallOptions(Headers: new Metadata { { "x-compress", "gzip" } }));

        var response = await call.ResponseAsync.WaitAsync(Wait);

        Assert.Equal(text, response.Value.ToStringUtf8());
    }

    [Fact]
    public async Task AsyncUnaryCall_ResponseOverReceiveLimit_FailsResourceExhausted()
    {
        using var channel = RpcChannel.ForAddress(Address, new RpcChannelOptions { MaxReceiveMessageSize = 1024 });
        using var call = channel.AsyncUnaryCall(Unary, Bytes("x"), new CallOptions(Headers: new Metadata { { "x-response-size", "4096" } }));

        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Contains("MaxReceiveMessageSize", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AsyncUnaryCall_CompressedResponseOverReceiveLimit_FailsResourceExhausted()
    {
        using var channel = RpcChannel.ForAddress(Address, new RpcChannelOptions { MaxReceiveMessageSize = 1024 });
        var headers = new Metadata { { "x-response-size", "100000" }, { "x-compress", "gzip" } };

        var ex = await Assert.ThrowsAsync<RpcException>(() => channel.AsyncUnaryCall(Unary, Bytes("x"), new CallOptions(Headers: headers)).ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
    }

    [Fact]
    public async Task AsyncUnaryCall_RequestOverSendLimit_FailsResourceExhaustedWithoutSending()
    {
        using var channel = RpcChannel.ForAddress(Address, new RpcChannelOptions { MaxSendMessageSize = 100 });

        var ex = await Assert.ThrowsAsync<RpcException>(() => channel.AsyncUnaryCall(Unary, Bytes(new string('x', 200))).ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Contains("MaxSendMessageSize", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AsyncUnaryCall_CancelledThroughToken_FailsCancelledAndServerSeesTheReset()
    {
        var id = Guid.NewGuid().ToString("N");
        using var cts = new CancellationTokenSource();
        using var call = Channel.AsyncUnaryCall(Sleep, Bytes("z"), new CallOptions(Headers: new Metadata { { "x-call-id", id } }, CancellationToken: cts.Token));
        Assert.Equal("1", (await call.ResponseHeadersAsync.WaitAsync(Wait)).GetValue("x-sleeping"));

        await cts.CancelAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.Cancelled, ex.StatusCode);
        var seen = await Channel.AsyncUnaryCall(WasCancelled, new StringValue { Value = id }).ResponseAsync.WaitAsync(Wait);
        Assert.True(seen.Value, "the server never saw the call cancelled (no RST_STREAM)");
    }

    [Fact]
    public async Task AsyncUnaryCall_DisposedWhileRunning_FailsCancelledAndServerSeesTheReset()
    {
        var id = Guid.NewGuid().ToString("N");
        var call = Channel.AsyncUnaryCall(Sleep, Bytes("z"), new CallOptions(Headers: new Metadata { { "x-call-id", id } }));
        await call.ResponseHeadersAsync.WaitAsync(Wait);

        call.Dispose();
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.Cancelled, ex.StatusCode);
        Assert.Equal(StatusCode.Cancelled, call.GetStatus().StatusCode);
        var seen = await Channel.AsyncUnaryCall(WasCancelled, new StringValue { Value = id }).ResponseAsync.WaitAsync(Wait);
        Assert.True(seen.Value, "the server never saw the call cancelled (no RST_STREAM)");
    }

    [Fact]
    public async Task AsyncUnaryCall_DeadlineOnSleepingServer_FailsDeadlineExceeded()
    {
        using var call = Channel.AsyncUnaryCall(Sleep, Bytes("z"), new CallOptions(Deadline: DateTime.UtcNow.AddMilliseconds(300)));

        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
    }

    [Fact]
    public async Task AsyncDuplexStreamingCall_DeadlineBeforeAnyResponse_MoveNextFailsDeadlineExceeded()
    {
        using var call = Channel.AsyncDuplexStreamingCall(Duplex, new CallOptions(Deadline: DateTime.UtcNow.AddMilliseconds(1)));

        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Wait));

        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
    }

    [Fact]
    public async Task AsyncDuplexStreamingCall_CancelAfterFirstResponse_FailsCancelled()
    {
        using var cts = new CancellationTokenSource();
        using var call = Channel.AsyncDuplexStreamingCall(Duplex, new CallOptions(CancellationToken: cts.Token));
        await call.RequestStream.WriteAsync(Bytes("first")).WaitAsync(Wait);
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Wait));

        await cts.CancelAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Wait));

        Assert.Equal(StatusCode.Cancelled, ex.StatusCode);
        var writeEx = await Assert.ThrowsAsync<RpcException>(() => call.RequestStream.WriteAsync(Bytes("late")).WaitAsync(Wait));
        Assert.Equal(StatusCode.Cancelled, writeEx.StatusCode);
    }

    [Fact]
    public async Task AsyncClientStreamingCall_CancelAfterBegin_FailsCancelled()
    {
        using var cts = new CancellationTokenSource();
        using var call = Channel.AsyncClientStreamingCall(ClientStream, new CallOptions(CancellationToken: cts.Token));

        await cts.CancelAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.Cancelled, ex.StatusCode);
    }

    [Fact]
    public async Task AsyncUnaryCall_UnknownMethod_FailsUnimplemented()
    {
        var missing = new Method<BytesValue, BytesValue>(MethodType.Unary, ServiceName, "NoSuchMethod");

        var ex = await Assert.ThrowsAsync<RpcException>(() => Channel.AsyncUnaryCall(missing, Bytes("x")).ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
    }

    [Fact]
    public async Task AsyncUnaryCall_UnknownService_FailsUnimplemented()
    {
        var missing = new Method<BytesValue, BytesValue>(MethodType.Unary, "cp.test.NoSuchService", "Unary");

        var ex = await Assert.ThrowsAsync<RpcException>(() => Channel.AsyncUnaryCall(missing, Bytes("x")).ResponseAsync.WaitAsync(Wait));

        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
    }
}

/// <summary>The client against grpcio, the reference implementation.</summary>
public sealed class ClientCallGrpcioTests(ClientGrpcioServerFixture server) : ClientCallTests(server.Address), IClassFixture<ClientGrpcioServerFixture>;

/// <summary>The client against our own Kestrel server.</summary>
public sealed class ClientCallOurServerTests(ClientOurServerFixture server) : ClientCallTests(server.Address), IClassFixture<ClientOurServerFixture>
{
    [Fact]
    public async Task ServerWrite_BufferHint_ResponseWaitsForTheNextFlushedWrite()
    {
        var wait = TimeSpan.FromSeconds(30);
        using var call = Channel.AsyncDuplexStreamingCall(Duplex);

        await call.RequestStream.WriteAsync(Bytes("hold:first")).WaitAsync(wait);
        var first = call.ResponseStream.MoveNext(CancellationToken.None);
        await Task.WhenAny(first, Task.Delay(TimeSpan.FromMilliseconds(300)));
        Assert.False(first.IsCompleted, "a response written with BufferHint left the server before any flush");

        await call.RequestStream.WriteAsync(Bytes("second")).WaitAsync(wait);
        Assert.True(await first.WaitAsync(wait));
        Assert.Equal("hold:first", call.ResponseStream.Current.Value.ToStringUtf8());
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(wait));
        Assert.Equal("second", call.ResponseStream.Current.Value.ToStringUtf8());

        // A held response is not lost when the call ends right after it.
        await call.RequestStream.WriteAsync(Bytes("hold:last")).WaitAsync(wait);
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(wait));
        Assert.Equal("hold:last", call.ResponseStream.Current.Value.ToStringUtf8());
        Assert.False(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(wait));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }
}
