using ControlPlane.Rpc.Testing;
using ControlPlane.Rpc.Tests.Protos;

namespace ControlPlane.Rpc.Tests;

public sealed class ServerBindingTests
{
    private static ServiceDefinition.Builder Builder() => ServiceDefinition.For(RpcTestReflection.Descriptor.Services[0]);

    [Fact]
    public void AddUnary_UnknownMethod_ThrowsNamingMethodAndListingKnownOnes()
    {
        var ex = Assert.Throws<InvalidOperationException>(() =>
            Builder().AddUnary<EchoRequest, EchoResponse>("Missing", (r, c) => Task.FromResult(new EchoResponse())));

        Assert.Contains("/controlplane.rpctest.TestService/Missing", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Unary, ClientStream", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddUnary_WrongRequestType_ThrowsNamingMethodAndTypes()
    {
        var ex = Assert.Throws<InvalidOperationException>(() =>
            Builder().AddUnary<OtherMessage, EchoResponse>("Unary", (r, c) => Task.FromResult(new EchoResponse())));

        Assert.Contains("/controlplane.rpctest.TestService/Unary", ex.Message, StringComparison.Ordinal);
        Assert.Contains("controlplane.rpctest.EchoRequest", ex.Message, StringComparison.Ordinal);
        Assert.Contains(typeof(OtherMessage).FullName!, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddUnary_WrongResponseType_ThrowsNamingMethod()
    {
        var ex = Assert.Throws<InvalidOperationException>(() =>
            Builder().AddUnary<EchoRequest, OtherMessage>("Unary", (r, c) => Task.FromResult(new OtherMessage())));

        Assert.Contains("/controlplane.rpctest.TestService/Unary", ex.Message, StringComparison.Ordinal);
        Assert.Contains("response", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddUnary_OnServerStreamingMethod_ThrowsNamingShapeAndFix()
    {
        var ex = Assert.Throws<InvalidOperationException>(() =>
            Builder().AddUnary<EchoRequest, EchoResponse>("ServerStream", (r, c) => Task.FromResult(new EchoResponse())));

        Assert.Contains("/controlplane.rpctest.TestService/ServerStream", ex.Message, StringComparison.Ordinal);
        Assert.Contains("server-streaming", ex.Message, StringComparison.Ordinal);
        Assert.Contains("AddServerStreaming", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddDuplexStreaming_OnClientStreamingMethod_Throws()
    {
        var ex = Assert.Throws<InvalidOperationException>(() =>
            Builder().AddDuplexStreaming<EchoRequest, EchoResponse>("ClientStream", (r, w, c) => Task.CompletedTask));

        Assert.Contains("/controlplane.rpctest.TestService/ClientStream", ex.Message, StringComparison.Ordinal);
        Assert.Contains("AddClientStreaming", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddUnary_SameMethodTwice_Throws()
    {
        var builder = Builder().AddUnary<EchoRequest, EchoResponse>("Unary", (r, c) => Task.FromResult(new EchoResponse()));

        var ex = Assert.Throws<InvalidOperationException>(() =>
            builder.AddUnary<EchoRequest, EchoResponse>("Unary", (r, c) => Task.FromResult(new EchoResponse())));

        Assert.Contains("already has a handler", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MethodFromDescriptor_MatchingTypes_HasFullNameAndShape()
    {
        var method = Method<EchoRequest, EchoResponse>.FromDescriptor(RpcTestReflection.Descriptor.Services[0].FindMethodByName("Duplex"));

        Assert.Equal("/controlplane.rpctest.TestService/Duplex", method.FullName);
        Assert.Equal(MethodType.DuplexStreaming, method.Type);
        Assert.Equal("controlplane.rpctest.TestService", method.ServiceName);
    }

    [Fact]
    public async Task RpcServerStart_InvalidOptions_FailsNamingTheOption()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => RpcServer.Create(new RpcServerOptions { MaxReceiveMessageSize = 0 }));
        Assert.Contains("MaxReceiveMessageSize", ex.Message, StringComparison.Ordinal);

        await using var server = RpcServer.Create(new RpcServerOptions());
        var noListener = await Assert.ThrowsAsync<InvalidOperationException>(() => server.StartAsync());
        Assert.Contains("ListenH2c", noListener.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TestServerCallContext_HandlerSetsStatusTrailersAndHeaders_TestReadsThem()
    {
        using var cts = new CancellationTokenSource();
        var deadline = new DateTime(2030, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var context = TestServerCallContext.Create(
            method: "/controlplane.rpctest.TestService/Unary",
            deadline: deadline,
            requestHeaders: new Metadata { { "x-user", "ada" } },
            cancellationToken: cts.Token);
        UnaryServerMethod<EchoRequest, EchoResponse> handler = async (request, ctx) =>
        {
            await ctx.WriteResponseHeadersAsync(new Metadata { { "x-seen-user", ctx.RequestHeaders.GetValue("x-user")! } });
            ctx.ResponseTrailers.Add("x-deadline", ctx.Deadline.ToString("O"));
            ctx.Status = new Status(StatusCode.PermissionDenied, "no");
            return new EchoResponse { Text = ctx.Method };
        };

        var response = await handler(new EchoRequest(), context);

        Assert.Equal("/controlplane.rpctest.TestService/Unary", response.Text);
        Assert.Equal(StatusCode.PermissionDenied, context.Status.StatusCode);
        Assert.Equal("ada", context.ResponseHeaders!.GetValue("x-seen-user"));
        Assert.Equal(deadline.ToString("O"), context.ResponseTrailers.GetValue("x-deadline"));
        Assert.Throws<InvalidOperationException>(() => context.WriteResponseHeadersAsync(new Metadata()).GetAwaiter().GetResult());
    }

    [Fact]
    public async Task TestServerCallContext_TokenCancelled_HandlerObservesIt()
    {
        using var cts = new CancellationTokenSource();
        var context = TestServerCallContext.Create(cancellationToken: cts.Token);
        var probe = new ServerHandlerProbe();

        var call = ServerTestHost.UnaryAsync(probe, new EchoRequest { Text = "wait" }, context);
        await probe.Started.Task.WaitAsync(ServerTestHost.Timeout);
        cts.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(ServerTestHost.Timeout));
    }

    [Fact]
    public async Task Interceptors_ConfiguredInOrder_RunOutermostFirstAndCanShortCircuit()
    {
        var order = new List<string>();
        await using var host = await ServerTestHost.StartAsync(o =>
        {
            o.Interceptors.Add(new RecordingInterceptor("first", order, deny: false));
            o.Interceptors.Add(new RecordingInterceptor("second", order, deny: false));
        });

        var result = await host.Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Text = "hi" }));

        Assert.Equal(StatusCode.OK, result.StatusCode);
        Assert.Equal(new[] { "first:before", "second:before", "second:after", "first:after" }, order);
    }

    [Fact]
    public async Task Interceptor_Denies_ReturnsItsStatusWithoutRunningHandler()
    {
        await using var host = await ServerTestHost.StartAsync(o => o.Interceptors.Add(new RecordingInterceptor("auth", new List<string>(), deny: true)));

        var unary = await host.Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Text = "hi" }));
        var duplex = await host.Client.CallAsync("Duplex", ProtocolFrames.Frame(new EchoRequest { Text = "hi" }));

        Assert.Equal(StatusCode.Unauthenticated, unary.StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, duplex.StatusCode);
        Assert.False(host.Probe.Started.Task.IsCompleted);
    }

    private sealed class RecordingInterceptor : ServerInterceptor
    {
        private readonly string _name;
        private readonly List<string> _order;
        private readonly bool _deny;

        public RecordingInterceptor(string name, List<string> order, bool deny)
        {
            _name = name;
            _order = order;
            _deny = deny;
        }

        public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
        {
            if (_deny)
            {
                throw new RpcException(new Status(StatusCode.Unauthenticated, "no token"));
            }

            _order.Add(_name + ":before");
            var response = await continuation(request, context);
            _order.Add(_name + ":after");
            return response;
        }

        public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
        {
            if (_deny)
            {
                throw new RpcException(new Status(StatusCode.Unauthenticated, "no token"));
            }

            return continuation(requestStream, responseStream, context);
        }
    }
}
