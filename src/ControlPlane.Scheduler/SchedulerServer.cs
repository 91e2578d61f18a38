using System.Security.Cryptography.X509Certificates;
using ControlPlane.Scheduler.Internal;
using ControlPlane.Scheduler.Services;
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
/// One scheduler replica: the run store, and RunService, AgentService, AdminService, grpc.health.v1 and server
/// reflection served by Grpc.AspNetCore on Kestrel (h2c, or TLS when a certificate is configured), with the shared
/// report pipeline and the maintenance loop. Replicas are stateless; all state is in the store.
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
    ];

    private readonly SchedulerOptions options;
    private readonly Func<SchedulerOptions, CancellationToken, Task<IRunStore>>? storeFactory;
    private readonly bool ownsStore;
    private readonly ILoggerFactory loggerFactory;
    private readonly ILogger logger;
    private readonly TimeProvider time;
    private readonly CancellationTokenSource shutdown = new();
    private readonly SignalHub hub = new();
    private readonly Lock gate = new();
    private IRunStore? store;
    private IAsyncDisposable? subscription;
    private ReportPipeline? pipeline;
    private MaintenanceLoop? maintenance;
    private WebApplication? app;
    private IReadOnlyList<Uri> addresses = [];
    private Task? stopping;
    private bool started;

    /// <summary>
    /// A replica that creates its own store: <paramref name="storeFactory"/> when given (e.g. the Redis store from
    /// ControlPlane.Scheduler.Redis), else the embedded store, which needs <see cref="SchedulerOptions.Redis"/> unset.
    /// The server disposes the store it created.
    /// </summary>
    public SchedulerServer(
        SchedulerOptions options,
        Func<SchedulerOptions, CancellationToken, Task<IRunStore>>? storeFactory = null,
        ILoggerFactory? loggerFactory = null,
        TimeProvider? timeProvider = null)
        : this(options, null, storeFactory, ownsStore: true, loggerFactory, timeProvider)
    {
    }

    /// <summary>A replica over an existing store (shared with other replicas in-process, or a test's); the caller disposes it.</summary>
    public SchedulerServer(SchedulerOptions options, IRunStore store, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
        : this(options, store ?? throw new ArgumentNullException(nameof(store)), null, ownsStore: false, loggerFactory, timeProvider)
    {
    }

    private SchedulerServer(
        SchedulerOptions options,
        IRunStore? store,
        Func<SchedulerOptions, CancellationToken, Task<IRunStore>>? storeFactory,
        bool ownsStore,
        ILoggerFactory? loggerFactory,
        TimeProvider? timeProvider)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (store is null && storeFactory is null && options.Redis is not null)
        {
            throw new ArgumentException(
                "SchedulerOptions.Redis is set but no store factory was given; pass one that connects the Redis store (ControlPlane.Scheduler.Redis RedisRunStore.ConnectAsync), or unset Redis for the embedded store.",
                nameof(storeFactory));
        }

        this.options = options;
        this.store = store;
        this.storeFactory = storeFactory;
        this.ownsStore = ownsStore;
        this.loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        logger = this.loggerFactory.CreateLogger("ControlPlane.Scheduler");
        time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>
    /// Adds to the web host before it is built. The process host (<see cref="Hosting.SchedulerHost"/>) uses it for
    /// the console or systemd lifetime; an in-process server handles no signals.
    /// </summary>
    internal Action<WebApplicationBuilder>? ConfigureHost { get; init; }

    /// <summary>The bound addresses (real ports when port 0 was asked for), after <see cref="StartAsync"/>.</summary>
    public IReadOnlyList<Uri> Addresses => addresses;

    /// <summary>The run store, after <see cref="StartAsync"/>.</summary>
    public IRunStore Store => store ?? throw new InvalidOperationException("The scheduler has not been started; call StartAsync first.");

    /// <summary>Store calls made by the report pipeline (group commits) and the reports they carried.</summary>
    public (long Commits, long Reports) ReportCommits => pipeline is null ? (0, 0) : (pipeline.Commits, pipeline.CommittedReports);

    /// <summary>Fires when the host asks to stop (SIGTERM through the host's lifetime), after <see cref="StartAsync"/>.</summary>
    internal CancellationToken StopRequested => app?.Lifetime.ApplicationStopping ?? CancellationToken.None;

    /// <summary>Creates the store, subscribes to its signals, starts the pipeline and the reaper, then the listener.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        lock (gate)
        {
            if (started)
            {
                throw new InvalidOperationException("The scheduler is already started.");
            }

            started = true;
        }

        store ??= storeFactory is not null
            ? await storeFactory(options, cancellationToken).ConfigureAwait(false)
            : new EmbeddedRunStore(options.CreateStoreOptions(), time, loggerFactory.CreateLogger<EmbeddedRunStore>());

        pipeline = new ReportPipeline(store, options.ReportBatch, logger, time);
        subscription = await store.SubscribeAsync(hub.OnSignal, cancellationToken).ConfigureAwait(false);
        pipeline.Start();
        maintenance = new MaintenanceLoop(store, options, time, logger);
        maintenance.Start();

        app = BuildApplication(new SchedulerRuntime(options, store, pipeline, hub, logger, shutdown.Token));
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        addresses = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>()
            .Addresses.Select(a => new Uri(a)).ToArray();
        SchedulerLog.Listening(logger, options.EffectiveSchedulerId, string.Join(", ", addresses));
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
        builder.Services.AddSingleton(loggerFactory);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);

        // An in-process replica (tests, cpctl dev) must not take over the process's signals; the process host adds its lifetime.
        builder.Services.AddSingleton<IHostLifetime, InProcessLifetime>();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.ShutdownTimeout);

        var endpoint = SchedulerOptions.ParseListen(options.Listen);
        var certificate = LoadCertificate(options);
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
                if (certificate is not null)
                {
                    listen.UseHttps(certificate);
                }
            });
        });

        builder.Services.AddGrpc(grpc =>
        {
            // A RunSpec of 10,000 steps, or an assignment carrying 1 MiB inputs from several steps, exceeds the 4 MiB default.
            grpc.MaxReceiveMessageSize = options.MaxReceiveMessageSize;
        });
        builder.Services.AddSingleton(runtime);
        builder.Services.AddSingleton<RunServiceImpl>();
        builder.Services.AddSingleton<AgentServiceImpl>();
        builder.Services.AddSingleton<AdminServiceImpl>();
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
            publisher.Period = options.WatchRecheckInterval < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : options.WatchRecheckInterval;
        });
        if (options.Reflection)
        {
            builder.Services.AddGrpcReflection();
        }

        ConfigureHost?.Invoke(builder);

        var web = builder.Build();
        web.UseMiddleware<HealthWatchShutdown>();
        web.MapGrpcService<RunServiceImpl>();
        web.MapGrpcService<AgentServiceImpl>();
        web.MapGrpcService<AdminServiceImpl>();
        web.MapGrpcHealthChecksService();
        if (options.Reflection)
        {
            web.MapGrpcReflectionService();
        }

        return web;
    }

    private static X509Certificate2? LoadCertificate(SchedulerOptions options)
    {
        if (options.TlsCert is null)
        {
            return null;
        }

        var pem = X509Certificate2.CreateFromPemFile(options.TlsCert, options.TlsKey);

        // Kestrel needs the private key in a form the platform's TLS stack can use; a PEM-loaded key is ephemeral.
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>Graceful shutdown, in a fixed order; safe to call more than once.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default)
    {
        lock (gate)
        {
            stopping ??= StopCoreAsync(cancellationToken);
            return stopping;
        }
    }

    private async Task StopCoreAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.ShutdownTimeout);
        var id = options.EffectiveSchedulerId;

        // 1. Health turns NOT_SERVING, and every agent, watch and health-watch stream ends with UNAVAILABLE: agents
        //    reconnect (to another replica) and keep their attempts by re-announcing them; watchers resume from their last seq.
        SchedulerLog.ShutdownStep(logger, id, "ending agent and watch streams");
        if (app is not null)
        {
            var health = app.Services.GetRequiredService<Grpc.HealthCheck.HealthServiceImpl>();
            foreach (var name in HealthServiceNames)
            {
                health.SetStatus(name, Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.NotServing);
            }
        }

        await shutdown.CancelAsync().ConfigureAwait(false);

        // 2. Stop accepting connections and let in-flight unary calls finish.
        SchedulerLog.ShutdownStep(logger, id, "stopping the listener");
        if (app is not null)
        {
            await Quietly(app.StopAsync(timeout.Token)).ConfigureAwait(false);
            await app.DisposeAsync().ConfigureAwait(false);
        }

        // 3. Commit the reports already received, so no result an agent sent before the stream ended is lost.
        SchedulerLog.ShutdownStep(logger, id, "draining the report pipeline");
        if (pipeline is not null)
        {
            await Quietly(pipeline.CompleteAsync(timeout.Token)).ConfigureAwait(false);
        }

        // 4. Stop the reaper; other replicas (or the next start) keep reaping.
        SchedulerLog.ShutdownStep(logger, id, "stopping maintenance");
        if (maintenance is not null)
        {
            await maintenance.StopAsync().ConfigureAwait(false);
        }

        // 5. Stop listening to store signals, then release the store.
        SchedulerLog.ShutdownStep(logger, id, "closing the store");
        if (subscription is not null)
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
        }

        if (ownsStore && store is not null)
        {
            await store.DisposeAsync().ConfigureAwait(false);
        }
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
        shutdown.Dispose();
    }
}
