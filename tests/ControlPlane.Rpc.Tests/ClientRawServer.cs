using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Rpc.Tests;

/// <summary>
/// A bare Kestrel HTTP/2 server whose every request runs one delegate: it plays misbehaving or silent
/// gRPC servers and records exactly what the client put on the wire.
/// </summary>
public sealed class ClientRawServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ClientRawServer(WebApplication app, string address)
    {
        _app = app;
        Address = address;
    }

    public string Address { get; }

    public static async Task<ClientRawServer> StartAsync(RequestDelegate handler, X509Certificate2? certificate = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l =>
        {
            l.Protocols = HttpProtocols.Http2;
            if (certificate is not null)
            {
                l.UseHttps(certificate);
            }
        }));
        var app = builder.Build();
        app.Run(handler);
        await app.StartAsync();
        var address = app.Urls.First().Replace("[::1]", "127.0.0.1", StringComparison.Ordinal);
        return new ClientRawServer(app, address);
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(timeout.Token);
        await _app.DisposeAsync();
    }
}
