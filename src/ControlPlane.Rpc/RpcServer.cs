using System.Net;
using System.Security.Cryptography.X509Certificates;
using ControlPlane.Rpc.Internal;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Rpc;

/// <summary>
/// A self-contained gRPC server on Kestrel (HTTP/2 only, h2c and/or TLS) hosting the given services.
/// For an existing ASP.NET Core app use AddRpc and MapRpcService instead.
/// </summary>
public sealed class RpcServer : IAsyncDisposable
{
    private readonly RpcServerOptions _options;
    private readonly ServiceDefinition[] _services;
    private readonly List<Action<KestrelServerOptions>> _listens = new();
    private Action<KestrelServerOptions>? _configureKestrel;
    private Action<ILoggingBuilder>? _configureLogging;
    private Action<IServiceCollection>? _configureServices;
    private WebApplication? _app;
    private RpcServiceRegistry? _registry;

    private RpcServer(RpcServerOptions options, ServiceDefinition[] services)
    {
        _options = options;
        _services = services;
    }

    /// <summary>The bound addresses after <see cref="StartAsync"/>, with real ports when port 0 was asked for.</summary>
    public IReadOnlyList<Uri> Addresses { get; private set; } = Array.Empty<Uri>();

    /// <summary>Handlers currently running (including ones still unwinding after their call ended).</summary>
    public long ActiveCalls => _registry?.Tracker.ActiveCalls ?? 0;

    /// <summary>Completes once no handler is running (e.g. to drain before shutdown, or to check for leaks).</summary>
    public Task WaitForIdleAsync(CancellationToken cancellationToken = default) =>
        _registry?.Tracker.WaitForIdleAsync(cancellationToken) ?? Task.CompletedTask;

    /// <summary>The application's services, after <see cref="StartAsync"/>.</summary>
    public IServiceProvider Services => _app?.Services ?? throw new InvalidOperationException("The server has not been started; call StartAsync first.");

    /// <summary>A server for the given services; add at least one listener before starting.</summary>
    public static RpcServer Create(RpcServerOptions options, params ServiceDefinition[] services)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(services);
        options.Validate();
        foreach (var service in services)
        {
            ArgumentNullException.ThrowIfNull(service, nameof(services));
        }

        return new RpcServer(options, services);
    }

    /// <summary>Listens for cleartext HTTP/2 (h2c, prior knowledge). Port 0 picks a free port.</summary>
    public RpcServer ListenH2c(IPAddress address, int port)
    {
        ArgumentNullException.ThrowIfNull(address);
        _listens.Add(k => k.Listen(address, port, l => l.Protocols = HttpProtocols.Http2));
        return this;
    }

    /// <summary>Listens for HTTP/2 over TLS (ALPN h2) with the given certificate. Port 0 picks a free port.</summary>
    public RpcServer ListenTls(IPAddress address, int port, X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(certificate);
        _listens.Add(k => k.Listen(address, port, l =>
        {
            l.Protocols = HttpProtocols.Http2;
            l.UseHttps(certificate);
        }));
        return this;
    }

    /// <summary>Adjusts Kestrel, e.g. Limits.Http2.MaxStreamsPerConnection (default 100).</summary>
    public RpcServer ConfigureKestrel(Action<KestrelServerOptions> configure)
    {
        _configureKestrel += configure ?? throw new ArgumentNullException(nameof(configure));
        return this;
    }

    /// <summary>Adds logging providers; by default the server logs nowhere.</summary>
    public RpcServer ConfigureLogging(Action<ILoggingBuilder> configure)
    {
        _configureLogging += configure ?? throw new ArgumentNullException(nameof(configure));
        return this;
    }

    /// <summary>Registers extra services (for handlers or interceptors resolved from DI).</summary>
    public RpcServer ConfigureServices(Action<IServiceCollection> configure)
    {
        _configureServices += configure ?? throw new ArgumentNullException(nameof(configure));
        return this;
    }

    /// <summary>Binds the listeners and starts serving.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_app is not null)
        {
            throw new InvalidOperationException("The server is already started.");
        }

        if (_listens.Count == 0)
        {
            throw new InvalidOperationException("The server has no listener; call ListenH2c or ListenTls before StartAsync.");
        }

        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            // Long-lived streams and large windows suit gRPC better than Kestrel's browser-oriented defaults.
            kestrel.Limits.Http2.InitialConnectionWindowSize = 1024 * 1024;
            kestrel.Limits.Http2.InitialStreamWindowSize = 768 * 1024;
            kestrel.AddServerHeader = false;
            foreach (var listen in _listens)
            {
                listen(kestrel);
            }

            _configureKestrel?.Invoke(kestrel);
        });
        builder.Logging.ClearProviders();
        _configureLogging?.Invoke(builder.Logging);
        builder.Services.AddRpc(o =>
        {
            o.MaxReceiveMessageSize = _options.MaxReceiveMessageSize;
            o.MaxSendMessageSize = _options.MaxSendMessageSize;
            o.ResponseCompression = _options.ResponseCompression;
            o.CompressionLevel = _options.CompressionLevel;
            o.EnableDetailedErrors = _options.EnableDetailedErrors;
            o.TimeProvider = _options.TimeProvider;
            foreach (var interceptor in _options.Interceptors)
            {
                o.Interceptors.Add(interceptor);
            }
        });
        _configureServices?.Invoke(builder.Services);

        var app = builder.Build();
        foreach (var service in _services)
        {
            app.MapRpcService(service);
        }

        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        _app = app;
        _registry = app.Services.GetRequiredService<RpcServiceRegistry>();
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? Array.Empty<string>();
        var uris = new List<Uri>();
        foreach (var address in addresses)
        {
            uris.Add(new Uri(address));
        }

        Addresses = uris;
    }

    /// <summary>Stops accepting calls and waits for running calls until the token fires.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (_app is not null)
        {
            await _app.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync().ConfigureAwait(false);
            _app = null;
        }
    }
}
