using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Tests.Support;

/// <summary>
/// A real gRPC server (Grpc.AspNetCore on Kestrel, h2c) on a free loopback port, hosting the service instances a
/// test fake provides; the peer the client, CLI and agent tests talk to.
/// </summary>
public sealed class TestGrpcHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestGrpcHost(WebApplication app, Uri address)
    {
        _app = app;
        Address = address.ToString().TrimEnd('/');
        Port = address.Port;
    }

    /// <summary>The server's address, e.g. http://127.0.0.1:41234.</summary>
    public string Address { get; }

    public int Port { get; }

    /// <summary>Starts a server: <paramref name="register"/> adds the service instances, <paramref name="map"/> maps them.</summary>
    public static async Task<TestGrpcHost> StartAsync(Action<IServiceCollection> register, Action<WebApplication> map)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        register(builder.Services);
        var app = builder.Build();
        map(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return new TestGrpcHost(app, new Uri(address));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(TimeSpan.FromSeconds(5).ToCancellationToken());
        await _app.DisposeAsync();
    }
}

internal static class TimeSpanExtensions
{
    public static CancellationToken ToCancellationToken(this TimeSpan timeout) => new CancellationTokenSource(timeout).Token;
}
