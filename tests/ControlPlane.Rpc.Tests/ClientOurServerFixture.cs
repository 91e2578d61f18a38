using System.Net;
using Xunit;

namespace ControlPlane.Rpc.Tests;

/// <summary>Hosts the echo service on our own RpcServer (Kestrel, h2c) on a free loopback port.</summary>
public sealed class ClientOurServerFixture : IAsyncLifetime
{
    private RpcServer? _server;

    public string Address { get; private set; } = string.Empty;

    public async Task InitializeAsync()
    {
        _server = RpcServer.Create(new RpcServerOptions { MaxReceiveMessageSize = 64 * 1024 * 1024 }, ClientEchoService.Definition())
            .ListenH2c(IPAddress.Loopback, 0);
        await _server.StartAsync();
        Address = _server.Addresses[0].ToString().TrimEnd('/');
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
