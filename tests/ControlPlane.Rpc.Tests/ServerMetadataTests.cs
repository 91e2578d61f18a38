using System.Net;
using ControlPlane.Rpc.Tests.Protos;

namespace ControlPlane.Rpc.Tests;

/// <summary>
/// Response headers and trailers that handlers build on the context and hand back through RpcException,
/// over a real server and our own client.
/// </summary>
public sealed class ServerMetadataTests : IAsyncLifetime
{
    private static readonly Method<EchoRequest, EchoResponse> Unary = new(MethodType.Unary, "controlplane.rpctest.TestService", "Unary");
    private static readonly Method<EchoRequest, EchoResponse> ServerStream = new(MethodType.ServerStreaming, "controlplane.rpctest.TestService", "ServerStream");
    private static readonly Method<EchoRequest, EchoResponse> Duplex = new(MethodType.DuplexStreaming, "controlplane.rpctest.TestService", "Duplex");

    private readonly TaskCompletionSource _lateHandlerDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stopMutating = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _readHeadersNow = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<string?> _lateHeader = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private RpcServer _server = null!;
    private RpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _server = RpcServer.Create(new RpcServerOptions(), BuildService()).ListenH2c(IPAddress.Loopback, 0);
        await _server.StartAsync();
        _channel = RpcChannel.ForAddress(_server.Addresses[0].ToString());
    }

    public async Task DisposeAsync()
    {
        _stopMutating.TrySetResult();
        _readHeadersNow.TrySetResult();
        _channel.Dispose();
        await _server.DisposeAsync();
    }

    [Theory]
    [InlineData("headers-then-throw-context-trailers")]
    [InlineData("throw-context-trailers")]
    public async Task Unary_ThrowsRpcExceptionWithContextTrailers_ClientGetsStatusAndEachTrailerOnce(string mode)
    {
        using var call = _channel.AsyncUnaryCall(Unary, new EchoRequest { Text = mode });

        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(ServerTestHost.Timeout));

        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Equal("step token is stale", ex.Status.Detail);
        Assert.Equal(["a"], ex.Trailers.GetAll("x-first").Select(e => e.Value));
        Assert.Equal(["b"], ex.Trailers.GetAll("x-second").Select(e => e.Value));
        await AssertIdleAsync();
    }

    [Fact]
    public async Task Unary_HeadersWritten_ClientSeesThemBeforeTheError()
    {
        using var call = _channel.AsyncUnaryCall(Unary, new EchoRequest { Text = "headers-then-throw-context-trailers" });

        var headers = await call.ResponseHeadersAsync.WaitAsync(ServerTestHost.Timeout);
        await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(ServerTestHost.Timeout));

        Assert.Equal("h", headers.GetValue("x-header"));
    }

    [Fact]
    public async Task Unary_ContextTrailersAndDistinctExceptionTrailers_BothSent()
    {
        using var call = _channel.AsyncUnaryCall(Unary, new EchoRequest { Text = "context-and-own-trailers" });

        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(ServerTestHost.Timeout));

        Assert.Equal(StatusCode.Aborted, ex.StatusCode);
        Assert.Equal("from-context", ex.Trailers.GetValue("x-context"));
        Assert.Equal([7, 8], ex.Trailers.GetValueBytes("x-own-bin"));
    }

    [Fact]
    public async Task ServerStreaming_MessageThenThrowsWithContextTrailers_MessageThenStatusAndTrailers()
    {
        using var call = _channel.AsyncServerStreamingCall(ServerStream, new EchoRequest { Text = "stream-then-throw" });

        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(ServerTestHost.Timeout));
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(ServerTestHost.Timeout));

        Assert.Equal("first", call.ResponseStream.Current.Text);
        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Equal(["a"], ex.Trailers.GetAll("x-first").Select(e => e.Value));
        await AssertIdleAsync();
    }

    [Fact]
    public async Task Duplex_HandlerReturnsWithErrorStatusAndTrailers_ClientGetsBoth()
    {
        using var call = _channel.AsyncDuplexStreamingCall(Duplex);
        await call.RequestStream.WriteAsync(new EchoRequest { Text = "set-status" });
        await call.RequestStream.CompleteAsync();

        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(ServerTestHost.Timeout));

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
        Assert.Equal("z", ex.Trailers.GetValue("x-duplex"));
    }

    [Fact]
    public async Task Unary_HandlerMutatesTrailersWhileDeadlineEndsCall_DeadlineExceededStatusNotReset()
    {
        using var raw = new ProtocolRawClient(_server.Addresses[0]);
        var headers = new Dictionary<string, string> { ["grpc-timeout"] = "100m" };

        ProtocolCallResult result;
        try
        {
            result = await raw.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Text = "trailers-after-deadline" }), headers)
                .WaitAsync(ServerTestHost.Timeout);
        }
        finally
        {
            _stopMutating.TrySetResult();
        }

        await _lateHandlerDone.Task.WaitAsync(ServerTestHost.Timeout);

        Assert.Equal(StatusCode.DeadlineExceeded, result.StatusCode);
        Assert.DoesNotContain("x-late", result.Headers.Keys.Concat(result.Trailers.Keys));
        await AssertIdleAsync();
    }

    [Fact]
    public async Task Unary_HandlerReadsRequestHeadersAfterDeadline_SeesWhatTheClientSent()
    {
        var headers = new Metadata { { "x-request-id", "late-reader-42" } };
        using var call = _channel.AsyncUnaryCall(
            Unary,
            new EchoRequest { Text = "headers-after-deadline" },
            new CallOptions(headers, DateTime.UtcNow.AddMilliseconds(200)));
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(ServerTestHost.Timeout));

        // More calls on the same connection, so Kestrel reuses the first call's pooled HttpContext.
        for (var i = 0; i < 5; i++)
        {
            await _channel.AsyncUnaryCall(Unary, new EchoRequest { Text = "ok" }, new CallOptions(new Metadata { { "x-request-id", "other" } })).ResponseAsync.WaitAsync(ServerTestHost.Timeout);
        }

        _readHeadersNow.TrySetResult();
        var seen = await _lateHeader.Task.WaitAsync(ServerTestHost.Timeout);

        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.Equal("late-reader-42", seen);
        await AssertIdleAsync();
    }

    private async Task AssertIdleAsync()
    {
        using var cts = new CancellationTokenSource(ServerTestHost.Timeout);
        await _server.WaitForIdleAsync(cts.Token);
        Assert.Equal(0, _server.ActiveCalls);
    }

    private ServiceDefinition BuildService() =>
        ServiceDefinition.For(RpcTestReflection.Descriptor.Services[0])
            .AddUnary<EchoRequest, EchoResponse>("Unary", UnaryAsync)
            .AddServerStreaming<EchoRequest, EchoResponse>("ServerStream", async (request, responses, context) =>
            {
                await responses.WriteAsync(new EchoResponse { Text = "first" });
                context.ResponseTrailers.Add("x-first", "a");
                throw new RpcException(new Status(StatusCode.FailedPrecondition, "stale"), context.ResponseTrailers);
            })
            .AddDuplexStreaming<EchoRequest, EchoResponse>("Duplex", async (requests, responses, context) =>
            {
                await foreach (var _ in requests.ReadAllAsync())
                {
                }

                context.ResponseTrailers.Add("x-duplex", "z");
                context.Status = new Status(StatusCode.NotFound, "nothing here");
            })
            .Build();

    private async Task<EchoResponse> UnaryAsync(EchoRequest request, ServerCallContext context)
    {
        switch (request.Text)
        {
            case "headers-then-throw-context-trailers":
                await context.WriteResponseHeadersAsync(new Metadata { { "x-header", "h" } });
                context.ResponseTrailers.Add("x-first", "a");
                context.ResponseTrailers.Add("x-second", "b");
                throw new RpcException(new Status(StatusCode.FailedPrecondition, "step token is stale"), context.ResponseTrailers);
            case "throw-context-trailers":
                context.ResponseTrailers.Add("x-first", "a");
                context.ResponseTrailers.Add("x-second", "b");
                throw new RpcException(new Status(StatusCode.FailedPrecondition, "step token is stale"), context.ResponseTrailers);
            case "context-and-own-trailers":
                context.ResponseTrailers.Add("x-context", "from-context");
                throw new RpcException(new Status(StatusCode.Aborted, "conflict"), new Metadata { { "x-own-bin", new byte[] { 7, 8 } } });
            case "trailers-after-deadline":
                context.ResponseTrailers.Add("x-late", "before-deadline");
                try
                {
                    await Task.Delay(Timeout.Infinite, context.CancellationToken);
                }
                catch (OperationCanceledException)
                {
                    // Leave the cancellation callback, then keep changing the trailers while the transport ends the call.
                    await Task.Yield();
                    while (!_stopMutating.Task.IsCompleted)
                    {
                        context.ResponseTrailers.Add("x-late", "v");
                        if (context.ResponseTrailers.Count > 64)
                        {
                            context.ResponseTrailers.Clear();
                        }
                    }
                }
                finally
                {
                    _lateHandlerDone.TrySetResult();
                }

                return new EchoResponse();
            case "headers-after-deadline":
                try
                {
                    await Task.Delay(Timeout.Infinite, context.CancellationToken);
                }
                catch (OperationCanceledException)
                {
                    await _readHeadersNow.Task;
                    try
                    {
                        _lateHeader.TrySetResult(context.RequestHeaders.GetValue("x-request-id"));
                    }
                    catch (Exception readError)
                    {
                        _lateHeader.TrySetException(readError);
                    }
                }

                return new EchoResponse();
            default:
                return new EchoResponse { Text = request.Text };
        }
    }
}
