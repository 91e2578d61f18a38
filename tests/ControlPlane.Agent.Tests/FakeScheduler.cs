using System.Threading.Channels;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Agent.Tests;

/// <summary>
/// A scheduler stand-in served over real gRPC (Grpc.AspNetCore, h2c): each agent stream becomes a
/// <see cref="FakeConnection"/> the test reads from and writes to.
/// </summary>
public sealed class FakeScheduler : IAsyncDisposable
{
    private readonly Channel<FakeConnection> _connections = Channel.CreateUnbounded<FakeConnection>();
    private TestGrpcHost? _server;
    private int _rejectNext;

    public string Address { get; private set; } = string.Empty;

    public static async Task<FakeScheduler> StartAsync()
    {
        var scheduler = new FakeScheduler();
        scheduler._server = await TestGrpcHost.StartAsync(
            services => services.AddSingleton(new Service(scheduler)),
            app => app.MapGrpcService<Service>());
        scheduler.Address = scheduler._server.Address;
        return scheduler;
    }

    /// <summary>The next streams fail at once with UNAVAILABLE, before any Welcome.</summary>
    public void RejectNext(int count) => Interlocked.Exchange(ref _rejectNext, count);

    /// <summary>Streams opened and not yet taken by <see cref="NextConnectionAsync"/>.</summary>
    public int WaitingConnections => _connections.Reader.Count;

    public Task<FakeConnection> NextConnectionAsync() => _connections.Reader.ReadAsync().AsTask().WithTimeout();

    private async Task ConnectAsync(IAsyncStreamReader<ConnectRequest> requests, IServerStreamWriter<ConnectResponse> responses, ServerCallContext context)
    {
        if (Interlocked.Decrement(ref _rejectNext) >= 0)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "not ready"));
        }

        var connection = new FakeConnection(responses) { RequestHeaders = context.RequestHeaders };
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

    private sealed class Service(FakeScheduler scheduler) : AgentService.AgentServiceBase
    {
        public override Task Connect(IAsyncStreamReader<ConnectRequest> requestStream, IServerStreamWriter<ConnectResponse> responseStream, ServerCallContext context) =>
            scheduler.ConnectAsync(requestStream, responseStream, context);
    }
}
