using System.Net;
using System.Threading.Channels;
using ControlPlane.Rpc;
using ControlPlane.V1;

namespace ControlPlane.Agent.Tests;

/// <summary>
/// A scheduler stand-in served over real gRPC (RpcServer, h2c): each agent stream becomes a
/// <see cref="FakeConnection"/> the test reads from and writes to.
/// </summary>
public sealed class FakeScheduler : IAsyncDisposable
{
    private readonly Channel<FakeConnection> _connections = Channel.CreateUnbounded<FakeConnection>();
    private RpcServer? _server;
    private int _rejectNext;

    public string Address { get; private set; } = string.Empty;

    public static async Task<FakeScheduler> StartAsync()
    {
        var scheduler = new FakeScheduler();
        var definition = ServiceDefinition.For(AgentServiceReflection.Descriptor.Services[0])
            .AddDuplexStreaming<ConnectRequest, ConnectResponse>("Connect", scheduler.ConnectAsync)
            .Build();
        scheduler._server = RpcServer.Create(new RpcServerOptions(), definition).ListenH2c(IPAddress.Loopback, 0);
        await scheduler._server.StartAsync();
        scheduler.Address = scheduler._server.Addresses[0].ToString().TrimEnd('/');
        return scheduler;
    }

    /// <summary>The next streams fail at once with UNAVAILABLE, before any Welcome.</summary>
    public void RejectNext(int count) => Interlocked.Exchange(ref _rejectNext, count);

    public Task<FakeConnection> NextConnectionAsync() => _connections.Reader.ReadAsync().AsTask().WithTimeout();

    private async Task ConnectAsync(IAsyncStreamReader<ConnectRequest> requests, IServerStreamWriter<ConnectResponse> responses, ServerCallContext context)
    {
        if (Interlocked.Decrement(ref _rejectNext) >= 0)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "not ready"));
        }

        var connection = new FakeConnection(responses);
        _connections.Writer.TryWrite(connection);
        await connection.ServeAsync(requests, context.CancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
