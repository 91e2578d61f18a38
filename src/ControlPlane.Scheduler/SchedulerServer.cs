using System.Security.Cryptography.X509Certificates;
using ControlPlane.Scheduler.Audit;
using ControlPlane.Scheduler.Internal;
using ControlPlane.Scheduler.Security;
using ControlPlane.Scheduler.Services;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Scheduler;

/// <summary>
/// One scheduler replica: the run stores of every namespace, and RunService, AgentService, AdminService, AuthService,
/// AuditService, SecretService, grpc.health.v1 and server reflection served by Grpc.AspNetCore on Kestrel (h2c, or TLS
/// when a certificate is configured), with a report pipeline and a maintenance loop per namespace. Replicas are
/// stateless; all state is in the stores.
/// </summary>
public sealed class SchedulerServer : IAsyncDisposable
{
    /// <summary>Service names grpc.health.v1 answers for ("" is the whole server).</summary>
    internal static readonly string[] HealthServiceNames =
    [
        "",
        "controlplane.v1.RunService",
        "controlplane.v1.AgentService",
        "controlplane.v1.AdminService",
        "controlplane.v1.AuthService",
        "controlplane.v1.AuditService",
    ];

    /// <summary>Response header (value "off") on every call to a scheduler that runs with authentication off.</summary>
    public const string AuthOffHeader = "cp-auth";

    /// <summary>How long the listener stays open after the last stream ended, so clients read its status first.</summary>
    private static readonly TimeSpan StatusLinger = TimeSpan.FromMilliseconds(250);

    private readonly SchedulerOptions _options;
    private readonly Func<SchedulerOptions, CancellationToken, Task<INamespaceStores>>? _storeFactory;
    private readonly bool _ownsStores;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly Lock _gate = new();
    private readonly SchedulerMetrics _metrics;
    private INamespaceStores? _stores;
    private NamespaceDirectory? _namespaces;
    private SecretCipher? _cipher;
    private bool _cipherChosen;
    private WebApplication? _app;
    private SchedulerRuntime? _runtime;
    private IReadOnlyList<Uri> _addresses = [];
    private Uri? _httpAddress;
    private ListenOptions? _grpcListener;
    private ListenOptions? _httpListener;
    private Task? _stopping;
    private bool _started;

    /// <summary>
    /// A replica that creates its own stores: <paramref name="storeFactory"/> when given (e.g. the Redis stores from
    /// ControlPlane.Scheduler.Redis), else an embedded store per namespace, which needs <see cref="SchedulerOptions.Redis"/>
    /// unset. The server disposes the stores it created.
    /// </summary>
    public SchedulerServer(
        SchedulerOptions options,
        Func<SchedulerOptions, CancellationToken, Task<INamespaceStores>>? storeFactory = null,
        ILoggerFactory? loggerFactory = null,
        TimeProvider? timeProvider = null)
        : this(options, null, storeFactory, ownsStores: true, loggerFactory, timeProvider)
    {
    }

    /// <summary>
    /// A replica over the stores of every namespace (shared with other replicas in-process, or a test's); the caller
    /// disposes them.
    /// </summary>
    public SchedulerServer(SchedulerOptions options, INamespaceStores stores, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
        : this(options, stores ?? throw new ArgumentNullException(nameof(stores)), null, ownsStores: false, loggerFactory, timeProvider)
    {
    }

    /// <summary>
    /// A replica over one existing store, which serves the namespace <see cref="SchedulerOptions.Namespace"/> alone;
    /// calls naming another are refused. The caller disposes the store.
    /// </summary>
    public SchedulerServer(SchedulerOptions options, IRunStore store, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
        : this(
            options,
            new SingleNamespaceStores(store ?? throw new ArgumentNullException(nameof(store)), options?.Namespace ?? throw new ArgumentNullException(nameof(options))),
            null,
            ownsStores: false,
            loggerFactory,
            timeProvider)
    {
    }

    private SchedulerServer(
        SchedulerOptions options,
        INamespaceStores? stores,
        Func<SchedulerOptions, CancellationToken, Task<INamespaceStores>>? storeFactory,
        bool ownsStores,
        ILoggerFactory? loggerFactory,
        TimeProvider? timeProvider)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (stores is null && storeFactory is null && options.Redis is not null)
        {
            throw new ArgumentException(
                "SchedulerOptions.Redis is set but no store factory was given; pass one that connects the Redis stores (ControlPlane.Scheduler.Redis RedisNamespaceStores.ConnectAsync), or unset Redis for the embedded store.",
                nameof(storeFactory));
        }

        _options = options;
        _stores = stores;
        _storeFactory = storeFactory;
        _ownsStores = ownsStores;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger("ControlPlane.Scheduler");
        _time = timeProvider ?? TimeProvider.System;
        _metrics = new SchedulerMetrics(_time);
    }

    /// <summary>
    /// Adds to the web host before it is built. The process host (<see cref="Hosting.SchedulerHost"/>) uses it for
    /// the console or systemd lifetime; an in-process server handles no signals.
    /// </summary>
    internal Action<WebApplicationBuilder>? ConfigureHost { get; init; }

    /// <summary>
    /// Where bearer tokens are kept. Default: the run store when it keeps tokens too (the Redis store), else an
    /// in-process <see cref="EmbeddedTokenStore"/>.
    /// </summary>
    public ITokenStore? TokenStore { get; init; }

    /// <summary>
    /// Where each namespace's audit trail is kept. Default: the namespace's run store when it keeps one too (the Redis
    /// store), else an in-process <see cref="EmbeddedAuditStore"/>.
    /// </summary>
    public Func<string, IAuditStore>? AuditStores { get; init; }

    /// <summary>
    /// Where each namespace's secrets are kept. Default: the namespace's run store when it keeps secrets too (the Redis
    /// store), else an in-process <see cref="EmbeddedSecretStore"/>.
    /// </summary>
    public Func<string, ISecretStore>? SecretStores { get; init; }

    /// <summary>Most namespaces that may exist (tests lower it). Default: <see cref="NamespaceDirectory.DefaultMaxNamespaces"/>.</summary>
    internal int MaxNamespaces { get; init; } = NamespaceDirectory.DefaultMaxNamespaces;

    /// <summary>The gRPC listener's bound addresses (real ports when port 0 was asked for), after <see cref="StartAsync"/>.</summary>
    public IReadOnlyList<Uri> Addresses => _addresses;

    /// <summary>
    /// The HTTP listener's bound address (dashboard, JSON API, /metrics, /healthz, /readyz), after
    /// <see cref="StartAsync"/>; null when <see cref="SchedulerOptions.HttpListen"/> is "off".
    /// </summary>
    public Uri? HttpAddress => _httpAddress;

    /// <summary>The run store of the default namespace (<see cref="SchedulerOptions.Namespace"/>), after <see cref="StartAsync"/>.</summary>
    public IRunStore Store => _namespaces?.Default.Store ?? throw new InvalidOperationException("The scheduler has not been started; call StartAsync first.");

    /// <summary>The namespaces this replica serves now, after <see cref="StartAsync"/>.</summary>
    public IReadOnlyList<string> Namespaces => _namespaces?.Opened.Select(n => n.Name).ToArray() ?? [];

    /// <summary>Store calls made by the report pipelines (group commits) and the reports they carried, over every namespace.</summary>
    public (long Commits, long Reports) ReportCommits => _namespaces is null
        ? (0, 0)
        : (_namespaces.Opened.Sum(n => n.Pipeline.Commits), _namespaces.Opened.Sum(n => n.Pipeline.CommittedReports));

    /// <summary>Fires when the host asks to stop (SIGTERM through the host's lifetime), after <see cref="StartAsync"/>.</summary>
    internal CancellationToken StopRequested => _app?.Lifetime.ApplicationStopping ?? CancellationToken.None;

    /// <summary>Creates the store, subscribes to its signals, starts the pipeline and the reaper, then the listener.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_started)
            {
                throw new InvalidOperationException("The scheduler is already started.");
            }

            _started = true;
        }

        // The first line says whether calls are authenticated, so nobody runs an open scheduler unknowingly.
        var listen = _options.Listen;
        if (!_options.AuthenticationEnabled)
        {
            SecurityLog.AuthenticationOff(_logger, listen);
        }
        else
        {
            SecurityLog.AuthenticationOn(_logger, listen);
        }

        if (_options.Insecure && !_options.ListensOnLoopback && (_options.TlsCert is null || !_options.AuthenticationEnabled))
        {
            SecurityLog.Insecure(_logger, listen, _options.TlsCert is null ? "no TLS" : "TLS", _options.AuthenticationEnabled ? "authentication" : "no authentication");
        }

        _stores ??= _storeFactory is not null
            ? await _storeFactory(_options, cancellationToken).ConfigureAwait(false)
            : new EmbeddedNamespaceStores(_options.CreateStoreOptions(), _time, _loggerFactory);

        // The default namespace opens now (a store that cannot be reached fails the start); the others on first use.
        _namespaces = new NamespaceDirectory(_stores, StartNamespaceAsync, _logger, MaxNamespaces);
        await _namespaces.StartAsync(_options.Namespace, cancellationToken).ConfigureAwait(false);

        var tokens = TokenStore ?? MeasuredRunStore.Unwrap(_namespaces.Default.Store) as ITokenStore ?? new EmbeddedTokenStore();
        await BootstrapAdminTokenAsync(tokens, cancellationToken).ConfigureAwait(false);
        _runtime = new SchedulerRuntime(_options, _namespaces, _logger, _shutdown.Token)
        {
            Tokens = new TokenValidator(tokens, _time),
            Time = _time,
            Metrics = _metrics,
        };
        _app = BuildApplication(_runtime);
        await _app.StartAsync(cancellationToken).ConfigureAwait(false);
        // Kestrel puts the bound endpoint (the real port for port 0) back on each listener's options.
        var scheme = _options.TlsCert is null ? "http" : "https";
        _addresses = [new Uri($"{scheme}://{FormatEndpoint(_grpcListener!.IPEndPoint!)}")];
        _httpAddress = _httpListener?.IPEndPoint is { } http ? new Uri($"{scheme}://{FormatEndpoint(http)}/") : null;
        SchedulerLog.Listening(_logger, _options.EffectiveSchedulerId, _addresses);
        if (_httpAddress is not null)
        {
            SchedulerLog.HttpListening(_logger, _httpAddress);
        }
    }

    /// <summary>Opens one namespace: its store, secrets and audit trail, then its pipeline, signals and maintenance.</summary>
    private async Task<NamespaceRuntime> StartNamespaceAsync(string ns, CancellationToken cancellationToken)
    {
        var store = await _stores!.OpenAsync(ns, cancellationToken).ConfigureAwait(false);
        var secrets = SecretStores?.Invoke(ns) ?? store as ISecretStore ?? new EmbeddedSecretStore();
        var audit = AuditStores?.Invoke(ns) ?? store as IAuditStore ?? new EmbeddedAuditStore(_time);
        lock (_gate)
        {
            // One key for every namespace, chosen when the default namespace opens.
            if (!_cipherChosen)
            {
                _cipher = CreateSecretCipher(secrets);
                _cipherChosen = true;
            }
        }

        return await NamespaceRuntime.StartAsync(ns, new MeasuredRunStore(store, _metrics, ns), _options, secrets, _cipher, audit, _time, _logger, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The cipher of the configured key file; without one, a key made now for the in-process store (its secrets end
    /// with the process anyway), and none for a shared store: SetSecret then says how to configure a key.
    /// </summary>
    private SecretCipher? CreateSecretCipher(ISecretStore secrets)
    {
        if (_options.SecretsKeyFile is { } file)
        {
            return new SecretCipher(SecretCipher.ReadKeyFile(file));
        }

        if (secrets is EmbeddedSecretStore)
        {
            SecurityLog.EphemeralSecretsKey(_logger);
            return new SecretCipher(System.Security.Cryptography.RandomNumberGenerator.GetBytes(SecretCipher.KeyLength));
        }

        return null;
    }

    /// <summary>Stores the configured admin token as "admin" (role admin, every namespace), replacing an older one of that name.</summary>
    private async Task BootstrapAdminTokenAsync(ITokenStore tokens, CancellationToken cancellationToken)
    {
        if (_options.ReadAdminToken() is not { } secret)
        {
            return;
        }

        var hash = TokenSecrets.Hash(secret);
        var existing = await tokens.FindAsync(hash, cancellationToken).ConfigureAwait(false);
        if (existing is { RevokedAt: not null })
        {
            // A revoked token stays revoked: restarting with the same file must not bring it back.
            SecurityLog.AdminTokenRevoked(_logger, existing.Name);
            return;
        }

        if (existing is null)
        {
            var admin = new ApiToken(hash, "admin", V1.TokenRole.Admin, CallerClaims.AnyNamespace, null, _time.GetUtcNow(), null, null);
            await tokens.PutAsync(admin, replace: true, cancellationToken).ConfigureAwait(false);
        }
    }

    private WebApplication BuildApplication(SchedulerRuntime runtime)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = "ControlPlane.Scheduler",
            ContentRootPath = AppContext.BaseDirectory,
        });

        // Logging goes to the factory the caller gave; Kestrel's own information lines are noise next to ours.
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(_loggerFactory);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);

        // An in-process replica (tests, cpctl dev) must not take over the process's signals; the process host adds its lifetime.
        builder.Services.AddSingleton<IHostLifetime, InProcessLifetime>();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = _options.ShutdownTimeout);

        var endpoint = SchedulerOptions.ParseListen(_options.Listen);
        var httpEndpoint = _options.HttpEndpoint;
        var certificate = LoadCertificate(_options);
        var clientCa = _options.LoadClientCa();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;

            // Pings find agents and clients whose host vanished without closing the connection.
            kestrel.Limits.Http2.KeepAlivePingDelay = TimeSpan.FromSeconds(30);
            kestrel.Limits.Http2.KeepAlivePingTimeout = TimeSpan.FromSeconds(20);
            kestrel.Listen(endpoint, listen =>
            {
                // h2c needs HTTP/2 with prior knowledge; TLS negotiates h2 by ALPN.
                listen.Protocols = HttpProtocols.Http2;
                UseTls(listen);
                _grpcListener = listen;
            });
            if (httpEndpoint is not null)
            {
                // Browsers and Prometheus speak HTTP/1.1, which an h2c-only listener cannot serve; with TLS, ALPN may pick h2.
                kestrel.Listen(httpEndpoint, listen =>
                {
                    listen.Protocols = certificate is null ? HttpProtocols.Http1 : HttpProtocols.Http1AndHttp2;
                    UseTls(listen);
                    _httpListener = listen;
                });
            }
        });

        void UseTls(ListenOptions listen)
        {
            if (certificate is not null)
            {
                listen.UseHttps(https =>
                {
                    https.ServerCertificate = certificate;
                    ClientCertificates.Configure(https, clientCa);
                });
            }
        }

        builder.Services.AddGrpc(grpc =>
            {
                // Agent reports carry outputs and checkpoints of up to 1 MiB each, beyond grpc's 4 MiB default once batched.
                grpc.MaxReceiveMessageSize = _options.MaxReceiveMessageSize;
            })

            // The services' google.api.http routes (/v1/runs, ...): the same methods, interceptors and policy, in JSON.
            // Errors carry google.rpc details (BadRequest, ErrorInfo...), written as JSON "details" entries by type.
            .AddJsonTranscoding(json => json.TypeRegistry = Google.Protobuf.Reflection.TypeRegistry.FromFiles(Google.Rpc.ErrorDetailsReflection.Descriptor))

            // Behind RequestSizeLimits, which refuses oversized requests first with a message naming the limit.
            .AddServiceOptions<RunServiceImpl>(grpc => grpc.MaxReceiveMessageSize = _options.MaxSubmitSize)
            .AddServiceOptions<AdminServiceImpl>(grpc => grpc.MaxReceiveMessageSize = RequestSizeLimits.SmallRequestLimit)
            .AddServiceOptions<SecretServiceImpl>(grpc => grpc.MaxReceiveMessageSize = RequestSizeLimits.SmallRequestLimit);
        builder.Services.AddSingleton(runtime);
        builder.Services.AddSingleton<RunServiceImpl>();
        builder.Services.AddSingleton<AgentServiceImpl>();
        builder.Services.AddSingleton<AdminServiceImpl>();
        builder.Services.AddSingleton<AuthServiceImpl>();
        builder.Services.AddSingleton<AuditServiceImpl>();
        builder.Services.AddSingleton<SecretServiceImpl>();
        var authenticated = _options.AuthenticationEnabled;
        if (authenticated)
        {
            // ASP.NET Core authentication (bearer tokens) and one policy that reads the authorization table per method.
            builder.Services.AddSingleton(runtime.Tokens);
            builder.Services.AddSingleton(_time);
            if (clientCa.Count > 0)
            {
                // Agents may present a client certificate instead of a token (CN or DNS SAN = agent id).
                builder.Services.AddSingleton(new ClientCertificateIdentity(_options.Namespace));
            }

            builder.Services.AddAuthentication(BearerTokenHandler.SchemeName)
                .AddScheme<AuthenticationSchemeOptions, BearerTokenHandler>(BearerTokenHandler.SchemeName, null);
            var requirement = new MethodPermissionRequirement();
            builder.Services.AddSingleton<Microsoft.AspNetCore.Authorization.IAuthorizationHandler>(requirement);
            builder.Services.AddAuthorizationBuilder().AddPolicy(MethodPermissionRequirement.PolicyName, policy => policy
                .AddAuthenticationSchemes(BearerTokenHandler.SchemeName)
                .RequireAuthenticatedUser()
                .AddRequirements(requirement));
        }

        builder.Services.AddGrpcHealthChecks(health =>
        {
            foreach (var name in HealthServiceNames)
            {
                health.Services.Map(name, _ => true);
            }
        }).AddCheck<SchedulerHealthCheck>("scheduler");

        // Health watchers learn of a change within one recheck interval (the publisher's period has a 1 s floor).
        builder.Services.Configure<HealthCheckPublisherOptions>(publisher =>
        {
            publisher.Delay = TimeSpan.Zero;
            publisher.Period = _options.WatchRecheckInterval < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : _options.WatchRecheckInterval;
        });
        if (_options.Reflection)
        {
            builder.Services.AddGrpcReflection();
        }

        // Traces over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; nothing otherwise.
        SchedulerTracing.Add(builder, _options, _stores);

        SchedulerTelemetry.AddMetrics(builder, _metrics, runtime, _logger);

        ConfigureHost?.Invoke(builder);

        var web = builder.Build();
        if (httpEndpoint is not null && System.Net.IPAddress.IsLoopback(httpEndpoint.Address))
        {
            web.UseMiddleware<LoopbackHostCheck>(new Func<int?>(() => _httpListener?.IPEndPoint?.Port));
        }

        web.UseMiddleware<RequestSizeLimits>(_options, _logger);
        web.UseMiddleware<HealthWatchShutdown>();
        if (authenticated)
        {
            web.UseAuthentication();
            web.UseAuthorization();
        }
        else
        {
            // One cheap header tells clients (cpctl prints a notice) that nothing here checks who calls.
            web.Use((context, next) =>
            {
                context.Response.Headers[AuthOffHeader] = "off";
                return next(context);
            });
        }

        // grpc.health stays open to probes; everything else needs a token the authorization table allows.
        var services = new List<IEndpointConventionBuilder>
        {
            web.MapGrpcService<RunServiceImpl>(),
            web.MapGrpcService<AgentServiceImpl>(),
            web.MapGrpcService<AdminServiceImpl>(),
            web.MapGrpcService<AuthServiceImpl>(),
            web.MapGrpcService<AuditServiceImpl>(),
            web.MapGrpcService<SecretServiceImpl>(),
        };
        web.MapGrpcHealthChecksService();
        MapHttpProbes(web);
        SchedulerTelemetry.MapMetrics(web, () => _httpListener?.IPEndPoint?.Port, authenticated);
        web.MapDashboard();
        if (_options.Reflection)
        {
            services.Add(web.MapGrpcReflectionService());
        }

        if (authenticated)
        {
            foreach (var service in services)
            {
                service.RequireAuthorization(MethodPermissionRequirement.PolicyName);
            }
        }

        return web;
    }

    /// <summary>
    /// /healthz answers while the process serves; /readyz runs the same checks as grpc.health (the store is reachable,
    /// the replica is not stopping). Both stay open to probes, as grpc.health does.
    /// </summary>
    private static void MapHttpProbes(WebApplication web)
    {
        web.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false });
        web.MapHealthChecks("/readyz");
    }

    private static string FormatEndpoint(System.Net.IPEndPoint endpoint) =>
        endpoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]:{endpoint.Port}" : $"{endpoint.Address}:{endpoint.Port}";

    private static X509Certificate2? LoadCertificate(SchedulerOptions options)
    {
        if (options.TlsCert is null)
        {
            return null;
        }

        using var pem = X509Certificate2.CreateFromPemFile(options.TlsCert, options.TlsKey);

        // Kestrel needs the private key in a form the platform's TLS stack can use; a PEM-loaded key is ephemeral.
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>Graceful shutdown, in a fixed order; safe to call more than once.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            _stopping ??= StopCoreAsync(cancellationToken);
            return _stopping;
        }
    }

    private async Task StopCoreAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.ShutdownTimeout);
        var id = _options.EffectiveSchedulerId;

        // 1. Health turns NOT_SERVING, and every agent, watch and health-watch stream ends with UNAVAILABLE: agents
        //    reconnect (to another replica) and keep their attempts by re-announcing them; watchers resume from their last seq.
        SchedulerLog.ShutdownStep(_logger, id, "ending agent and watch streams");
        await _shutdown.CancelAsync().ConfigureAwait(false);

        // After the cancel, so the health publisher's next pass (which now sees the drain) cannot flip it back.
        if (_app is not null)
        {
            var health = _app.Services.GetRequiredService<Grpc.HealthCheck.HealthServiceImpl>();
            foreach (var name in HealthServiceNames)
            {
                health.SetStatus(name, Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.NotServing);
            }
        }

        // Let every stream end with its status before the listener closes the connections: a client whose request
        // side is still open (an agent) loses trailers that arrive together with the connection's close.
        if (_runtime is not null && _runtime.Streams.Count > 0)
        {
            await Quietly(_runtime.Streams.WhenDrainedAsync().WaitAsync(timeout.Token)).ConfigureAwait(false);
            await Quietly(Task.Delay(StatusLinger, timeout.Token)).ConfigureAwait(false);
        }

        // 2. Stop accepting connections and let in-flight unary calls finish.
        SchedulerLog.ShutdownStep(_logger, id, "stopping the listener");
        if (_app is not null)
        {
            await Quietly(_app.StopAsync(timeout.Token)).ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
        }

        // 3. Commit the reports already received, so no result an agent sent before the stream ended is lost.
        SchedulerLog.ShutdownStep(_logger, id, "draining the report pipelines");
        var opened = _namespaces is null ? [] : await _namespaces.CloseAsync().ConfigureAwait(false);
        await Quietly(Task.WhenAll(opened.Select(n => n.CompletePipelineAsync(timeout.Token)))).ConfigureAwait(false);

        // 4. Stop the reapers and the store signals; other replicas (or the next start) keep reaping.
        SchedulerLog.ShutdownStep(_logger, id, "stopping maintenance");
        foreach (var ns in opened)
        {
            await ns.StopAsync().ConfigureAwait(false);
        }

        // 5. Release the stores.
        SchedulerLog.ShutdownStep(_logger, id, "closing the stores");
        if (_ownsStores && _stores is not null)
        {
            await _stores.DisposeAsync().ConfigureAwait(false);
        }

        _runtime?.Tokens.Dispose();
        _metrics.Dispose();
    }

    private static async Task Quietly(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Out of shutdown time: move on to the next step rather than hang.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _shutdown.Dispose();
    }
}
