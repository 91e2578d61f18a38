using ControlPlane.Rpc.Tests.Protos;
using Google.Protobuf;

namespace ControlPlane.Rpc.Tests;

/// <summary>
/// Broken or hostile peers: each test checks the status the client sees AND that nothing leaks — the
/// handler finished (or was never started), no handler is left running, and the server still serves.
/// </summary>
public sealed class HostileInputTests
{
    private static readonly TimeSpan Wait = ServerTestHost.Timeout;

    [Fact]
    public async Task ClientStream_TruncatedFrame_InternalAndHandlerFinished()
    {
        await using var host = await ServerTestHost.StartAsync();
        var whole = ProtocolFrames.Frame(new EchoRequest { Text = "ok" });
        var truncated = ProtocolFrames.Frame(new EchoRequest { Text = "cut short" })[..^4];

        var result = await host.Client.CallAsync("ClientStream", ProtocolFrames.Concat(whole, truncated));

        Assert.Equal(StatusCode.Internal, result.StatusCode);
        Assert.Contains("ended inside a message", result.StatusMessage, StringComparison.Ordinal);
        await host.Probe.Finished.Task.WaitAsync(Wait);
        Assert.Equal(1, host.Probe.MessagesRead);
        await host.AssertIdleAsync();
        await host.AssertStillServesAsync();
    }

    [Fact]
    public async Task ClientStream_LengthPrefixBeyondLimit_ResourceExhaustedWithoutWaitingForPayload()
    {
        await using var host = await ServerTestHost.StartAsync(o => o.MaxReceiveMessageSize = 1024);
        var content = new ProtocolStreamContent();
        using var request = host.Client.CreateRequest("ClientStream", content);
        var responseTask = host.Client.SendAsync(request);

        // Only the header announcing 64 MiB; the stream stays open, so the server must not wait for the body.
        await content.WriteAsync(ProtocolFrames.Frame(Array.Empty<byte>(), 0, 64 * 1024 * 1024));
        using var response = await responseTask.WaitAsync(Wait);
        var result = await ProtocolRawClient.ReadToEndAsync(response).WaitAsync(Wait);
        content.Complete();

        Assert.Equal(StatusCode.ResourceExhausted, result.StatusCode);
        Assert.Contains("1024", result.StatusMessage, StringComparison.Ordinal);
        await host.Probe.Finished.Task.WaitAsync(Wait);
        await host.AssertIdleAsync();
        await host.AssertStillServesAsync();
    }

    [Fact]
    public async Task Unary_MessageBeyondConfiguredLimit_ResourceExhaustedHandlerNeverRuns()
    {
        await using var host = await ServerTestHost.StartAsync(o => o.MaxReceiveMessageSize = 100);

        var result = await host.Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Payload = ByteString.CopyFrom(new byte[200]) }));

        Assert.Equal(StatusCode.ResourceExhausted, result.StatusCode);
        Assert.False(host.Probe.Started.Task.IsCompleted);
        await host.AssertIdleAsync();
        await host.AssertStillServesAsync();
    }

    [Fact]
    public async Task Unary_CompressedFlagWithoutEncoding_Internal()
    {
        await using var host = await ServerTestHost.StartAsync();

        var result = await host.Client.CallAsync("Unary", ProtocolFrames.GzipFrame(new EchoRequest { Text = "x" }));

        Assert.Equal(StatusCode.Internal, result.StatusCode);
        Assert.Contains("grpc-encoding", result.StatusMessage, StringComparison.Ordinal);
        Assert.False(host.Probe.Started.Task.IsCompleted);
        await host.AssertIdleAsync();
        await host.AssertStillServesAsync();
    }

    [Fact]
    public async Task Duplex_CompressedFlagWithoutEncodingMidStream_InternalAndHandlerFinished()
    {
        await using var host = await ServerTestHost.StartAsync();
        var body = ProtocolFrames.Concat(ProtocolFrames.Frame(new EchoRequest { Text = "fine" }), ProtocolFrames.GzipFrame(new EchoRequest { Text = "x" }));

        var result = await host.Client.CallAsync("Duplex", body);

        Assert.Equal(StatusCode.Internal, result.StatusCode);
        Assert.Single(result.Frames);
        await host.Probe.Finished.Task.WaitAsync(Wait);
        await host.AssertIdleAsync();
        await host.AssertStillServesAsync();
    }

    [Fact]
    public async Task Unary_MalformedProtobuf_Internal()
    {
        await using var host = await ServerTestHost.StartAsync();

        var result = await host.Client.CallAsync("Unary", ProtocolFrames.Frame(new byte[] { 0x0A, 0x7F, 0x01 }, 0, -1));

        Assert.Equal(StatusCode.Internal, result.StatusCode);
        Assert.False(host.Probe.Started.Task.IsCompleted);
        await host.AssertIdleAsync();
        await host.AssertStillServesAsync();
    }

    [Fact]
    public async Task Duplex_ClientResetsStreamMidCall_HandlerTokenFiresAndHandlerFinishes()
    {
        await using var host = await ServerTestHost.StartAsync();
        var content = new ProtocolStreamContent();
        using var cts = new CancellationTokenSource();
        using var request = host.Client.CreateRequest("Duplex", content);
        var response = await SendAndReadFirstAsync(host, content, request, cts.Token);

        // Cancelling the request and dropping the response makes the client send RST_STREAM(CANCEL).
        cts.Cancel();
        response.Dispose();

        await host.Probe.Cancelled.Task.WaitAsync(Wait);
        await host.Probe.Finished.Task.WaitAsync(Wait);
        await host.AssertIdleAsync();
        await host.AssertStillServesAsync();
    }

    [Fact]
    public async Task Duplex_ClientConnectionDropsMidCall_HandlerTokenFiresAndHandlerFinishes()
    {
        await using var host = await ServerTestHost.StartAsync();
        using var doomed = new ProtocolRawClient(host.Server.Addresses[0]);
        var content = new ProtocolStreamContent();
        using var request = doomed.CreateRequest("Duplex", content);
        using var response = await SendAndReadFirstAsync(host, content, request, default, doomed);

        doomed.DropConnections();

        await host.Probe.Cancelled.Task.WaitAsync(Wait);
        await host.Probe.Finished.Task.WaitAsync(Wait);
        await host.AssertIdleAsync();
        await host.AssertStillServesAsync();
    }

    [Fact]
    public async Task Duplex_DeadlineExpiresMidStream_DeadlineExceededAndHandlerCancelled()
    {
        await using var host = await ServerTestHost.StartAsync();
        var content = new ProtocolStreamContent();
        using var request = host.Client.CreateRequest("Duplex", content, new Dictionary<string, string> { ["grpc-timeout"] = "300m" });
        using var response = await SendAndReadFirstAsync(host, content, request, default);

        // The client keeps the stream open and silent; only the deadline can end it.
        var result = await ReadRestAsync(response).WaitAsync(Wait);

        Assert.Equal(StatusCode.DeadlineExceeded, result);
        await host.Probe.Cancelled.Task.WaitAsync(Wait);
        await host.Probe.Finished.Task.WaitAsync(Wait);
        await host.AssertIdleAsync();
        await host.AssertStillServesAsync();
        content.Complete();
    }

    [Fact]
    public async Task Unary_HandlerIgnoresExpiredDeadline_ClientStillGetsDeadlineExceeded()
    {
        await using var host = await ServerTestHost.StartAsync();
        var headers = new Dictionary<string, string> { ["grpc-timeout"] = "200m" };

        var result = await host.Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Text = "ignore-cancellation" }), headers).WaitAsync(Wait);

        Assert.Equal(StatusCode.DeadlineExceeded, result.StatusCode);
        Assert.Empty(result.Frames);
        Assert.True(host.Probe.Cancelled.Task.IsCompleted);
        Assert.False(host.Probe.Finished.Task.IsCompleted);
        Assert.Equal(1, host.Server.ActiveCalls);

        // The stuck handler is still counted until it returns; its late response goes nowhere.
        host.Probe.Release.TrySetResult();
        await host.Probe.Finished.Task.WaitAsync(Wait);
        await host.AssertIdleAsync();
        await host.AssertStillServesAsync();
    }

    [Fact]
    public async Task ServerStream_DeadlineWhileHandlerWaits_DeadlineExceededAfterFirstMessage()
    {
        await using var host = await ServerTestHost.StartAsync();
        var headers = new Dictionary<string, string> { ["grpc-timeout"] = "200m" };

        var result = await host.Client.CallAsync("ServerStream", ProtocolFrames.Frame(new EchoRequest { Text = "forever" }), headers).WaitAsync(Wait);

        Assert.Equal(StatusCode.DeadlineExceeded, result.StatusCode);
        Assert.Single(result.Frames);
        Assert.False(result.TrailersOnly);
        await host.Probe.Finished.Task.WaitAsync(Wait);
        await host.AssertIdleAsync();
    }

    [Fact]
    public async Task ClientStream_ThousandConcurrentStreamsOnOneConnection_AllComplete()
    {
        const int Streams = 1000;
        await using var host = await ServerTestHost.StartAsync(kestrel: k => k.Limits.Http2.MaxStreamsPerConnection = Streams + 10);
        host.Probe.MessagesTarget = Streams;
        var contents = new ProtocolStreamContent[Streams];
        var calls = new Task<ProtocolCallResult>[Streams];
        for (var i = 0; i < Streams; i++)
        {
            contents[i] = new ProtocolStreamContent();
            calls[i] = RunAsync(host, contents[i]);
            await contents[i].WriteAsync(ProtocolFrames.Frame(new EchoRequest { Text = "x" }));
        }

        // Every stream is open at once: each handler has read its first message and waits for more.
        await host.Probe.MessagesReached.Task.WaitAsync(Wait);
        Assert.Equal(Streams, host.Server.ActiveCalls);
        foreach (var content in contents)
        {
            await content.WriteAsync(ProtocolFrames.Frame(new EchoRequest { Text = "y" }));
            content.Complete();
        }

        var results = await Task.WhenAll(calls).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.All(results, r =>
        {
            Assert.Equal(StatusCode.OK, r.StatusCode);
            Assert.Equal("xy", r.Message<EchoResponse>(0).Text);
        });
        await host.AssertIdleAsync();

        static async Task<ProtocolCallResult> RunAsync(ServerTestHost host, ProtocolStreamContent content)
        {
            using var request = host.Client.CreateRequest("ClientStream", content);
            using var response = await host.Client.SendAsync(request);
            return await ProtocolRawClient.ReadToEndAsync(response);
        }
    }

    private static async Task<HttpResponseMessage> SendAndReadFirstAsync(ServerTestHost host, ProtocolStreamContent content, HttpRequestMessage request, CancellationToken cancellationToken, ProtocolRawClient? client = null)
    {
        var responseTask = (client ?? host.Client).SendAsync(request, cancellationToken);
        await content.WriteAsync(ProtocolFrames.Frame(new EchoRequest { Text = "first" }));
        var response = await responseTask.WaitAsync(Wait);
        var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        var first = await ProtocolRawClient.ReadFrameAsync(body, cancellationToken).WaitAsync(Wait);
        Assert.Equal("first", EchoResponse.Parser.ParseFrom(first!.Value.Payload).Text);
        await host.Probe.Started.Task.WaitAsync(Wait);
        return response;
    }

    private static async Task<StatusCode> ReadRestAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStreamAsync();
        while (await ProtocolRawClient.ReadFrameAsync(body) is not null)
        {
        }

        return (StatusCode)int.Parse(string.Join(",", response.TrailingHeaders.GetValues("grpc-status")), System.Globalization.CultureInfo.InvariantCulture);
    }
}
