using System.Net;
using ControlPlane.Rpc.Tests.Protos;
using Google.Protobuf;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace ControlPlane.Rpc.Tests;

/// <summary>
/// A real Kestrel server (h2c on a free loopback port) hosting controlplane.rpctest.TestService with
/// handlers whose behaviour is chosen by the request text.
/// </summary>
public sealed class ServerTestHost : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private ServerTestHost(RpcServer server, ServerHandlerProbe probe)
    {
        Server = server;
        Probe = probe;
        Client = new ProtocolRawClient(server.Addresses[0]);
    }

    public RpcServer Server { get; }

    public ServerHandlerProbe Probe { get; }

    public ProtocolRawClient Client { get; }

    public static async Task<ServerTestHost> StartAsync(Action<RpcServerOptions>? configure = null, Action<KestrelServerOptions>? kestrel = null)
    {
        var options = new RpcServerOptions();
        configure?.Invoke(options);
        var probe = new ServerHandlerProbe();
        var server = RpcServer.Create(options, BuildService(probe)).ListenH2c(IPAddress.Loopback, 0);
        if (kestrel is not null)
        {
            server.ConfigureKestrel(kestrel);
        }

        await server.StartAsync();
        return new ServerTestHost(server, probe);
    }

    public static ServiceDefinition BuildService(ServerHandlerProbe probe) =>
        ServiceDefinition.For(RpcTestReflection.Descriptor.Services[0])
            .AddUnary<EchoRequest, EchoResponse>("Unary", (request, context) => UnaryAsync(probe, request, context))
            .AddClientStreaming<EchoRequest, EchoResponse>("ClientStream", (requests, context) => ClientStreamAsync(probe, requests, context))
            .AddServerStreaming<EchoRequest, EchoResponse>("ServerStream", (request, responses, context) => ServerStreamAsync(probe, request, responses, context))
            .AddDuplexStreaming<EchoRequest, EchoResponse>("Duplex", (requests, responses, context) => DuplexAsync(probe, requests, responses, context))
            .Build();

    /// <summary>Waits until no handler runs any more; fails the test after <see cref="Timeout"/>.</summary>
    public async Task AssertIdleAsync()
    {
        using var cts = new CancellationTokenSource(Timeout);
        await Server.WaitForIdleAsync(cts.Token);
        Assert.Equal(0, Server.ActiveCalls);
    }

    /// <summary>A fresh unary call succeeds: the server still serves.</summary>
    public async Task AssertStillServesAsync()
    {
        var result = await Client.CallAsync("Unary", ProtocolFrames.Frame(new EchoRequest { Text = "ping" }));
        Assert.Equal(StatusCode.OK, result.StatusCode);
        Assert.Equal("ping", result.Message<EchoResponse>(0).Text);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
    }

    public static async Task<EchoResponse> UnaryAsync(ServerHandlerProbe probe, EchoRequest request, ServerCallContext context)
    {
        probe.Watch(context.CancellationToken);
        try
        {
            switch (request.Text)
            {
                case "throw":
                    throw new InvalidOperationException("secret internals");
                case "rpc-error":
                {
                    var trailers = new Metadata { { "x-reason", "bad input" }, { "x-detail-bin", new byte[] { 0, 1, 255 } } };
                    throw new RpcException(new Status(StatusCode.InvalidArgument, "text: must not be 'rpc-error' — ünïcode 100%"), trailers);
                }

                case "set-status":
                    context.Status = new Status(StatusCode.NotFound, "no such thing");
                    context.ResponseTrailers.Add("x-where", "nowhere");
                    return new EchoResponse { Text = "ignored" };
                case "echo-metadata":
                {
                    var headers = new Metadata();
                    foreach (var entry in context.RequestHeaders)
                    {
                        if (entry.Key.StartsWith("x-", StringComparison.Ordinal))
                        {
                            headers.Add(entry);
                            context.ResponseTrailers.Add(entry.IsBinary ? new Metadata.Entry("t" + entry.Key, entry.ValueBytes) : new Metadata.Entry("t" + entry.Key, entry.Value));
                        }
                    }

                    await context.WriteResponseHeadersAsync(headers);
                    return new EchoResponse { Text = context.Method + "|" + (context.Deadline == DateTime.MaxValue ? "no-deadline" : "deadline") };
                }

                case "wait":
                    await Task.Delay(System.Threading.Timeout.Infinite, context.CancellationToken);
                    return new EchoResponse();
                case "ignore-cancellation":
                    await probe.Release.Task;
                    return new EchoResponse { Text = "late" };
                case "compress":
                    context.ResponseCompression = "gzip";
                    return new EchoResponse { Text = request.Text, Payload = request.Payload };
                case "deadline":
                    return new EchoResponse { Text = context.Deadline.ToString("O") };
                default:
                    return new EchoResponse { Text = request.Text, Payload = request.Payload };
            }
        }
        finally
        {
            probe.Finished.TrySetResult();
        }
    }

    private static async Task<EchoResponse> ClientStreamAsync(ServerHandlerProbe probe, IAsyncStreamReader<EchoRequest> requests, ServerCallContext context)
    {
        probe.Watch(context.CancellationToken);
        try
        {
            var count = 0;
            var text = new System.Text.StringBuilder();
            await foreach (var request in requests.ReadAllAsync(context.CancellationToken))
            {
                probe.OnMessageRead();
                count++;
                text.Append(request.Text);
            }

            return new EchoResponse { Text = text.ToString(), Index = count };
        }
        catch (Exception ex)
        {
            probe.LastError = ex;
            throw;
        }
        finally
        {
            probe.Finished.TrySetResult();
        }
    }

    private static async Task ServerStreamAsync(ServerHandlerProbe probe, EchoRequest request, IServerStreamWriter<EchoResponse> responses, ServerCallContext context)
    {
        probe.Watch(context.CancellationToken);
        try
        {
            if (request.Text == "forever")
            {
                for (var i = 0; ; i++)
                {
                    await responses.WriteAsync(new EchoResponse { Index = i }, context.CancellationToken);
                    if (i == 0)
                    {
                        await Task.Delay(System.Threading.Timeout.Infinite, context.CancellationToken);
                    }
                }
            }

            if (request.Text == "no-compress-second")
            {
                context.ResponseCompression = "gzip";
            }

            for (var i = 0; i < request.Count; i++)
            {
                if (request.Text == "no-compress-second")
                {
                    context.WriteOptions = new WriteOptions(NoCompress: i == 1);
                }

                await responses.WriteAsync(new EchoResponse { Text = request.Text, Index = i, Payload = request.Payload });
            }

            if (request.Text == "fail-after")
            {
                throw new RpcException(new Status(StatusCode.Aborted, "stopped after messages"));
            }
        }
        finally
        {
            probe.Finished.TrySetResult();
        }
    }

    private static async Task DuplexAsync(ServerHandlerProbe probe, IAsyncStreamReader<EchoRequest> requests, IServerStreamWriter<EchoResponse> responses, ServerCallContext context)
    {
        probe.Watch(context.CancellationToken);
        try
        {
            var index = 0;
            while (await requests.MoveNext(context.CancellationToken))
            {
                probe.OnMessageRead();
                await responses.WriteAsync(new EchoResponse { Text = requests.Current.Text, Index = index++ });
            }
        }
        catch (Exception ex)
        {
            probe.LastError = ex;
            throw;
        }
        finally
        {
            probe.Finished.TrySetResult();
        }
    }
}
