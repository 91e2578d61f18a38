using ControlPlane.Rpc;
using ControlPlane.Scheduler.Services;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Scheduler;

/// <summary>
/// One scheduler replica: the run store, the RunService, AgentService, AdminService and Health gRPC services on
/// one listener, the shared report pipeline and the maintenance loop. Replicas are stateless; all state is in the store.
/// </summary>
public sealed class SchedulerServer : IAsyncDisposable
{
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
    private RpcServer? server;
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

    /// <summary>The bound addresses (real ports when port 0 was asked for), after <see cref="StartAsync"/>.</summary>
    public IReadOnlyList<Uri> Addresses => server?.Addresses ?? [];

    /// <summary>The run store, after <see cref="StartAsync"/>.</summary>
    public IRunStore Store => store ?? throw new InvalidOperationException("The scheduler has not been started; call StartAsync first.");

    /// <summary>Store calls made by the report pipeline (group commits) and the reports they carried.</summary>
    public (long Commits, long Reports) ReportCommits => pipeline is null ? (0, 0) : (pipeline.Commits, pipeline.CommittedReports);

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

        var endpoint = SchedulerOptions.ParseListen(options.Listen);
        var runs = new RunServiceImpl(store, hub, options, shutdown.Token);
        var agents = new AgentServiceImpl(store, pipeline, hub, options, logger, shutdown.Token);
        var admin = new AdminServiceImpl(store);
        var health = new HealthServiceImpl(store, options, logger, shutdown.Token);
        var rpcOptions = new RpcServerOptions
        {
            // A RunSpec of 10,000 steps, or an assignment carrying 1 MiB inputs from several steps, exceeds the 4 MiB default.
            MaxReceiveMessageSize = 64 * 1024 * 1024,
        };
        server = RpcServer.Create(rpcOptions, runs.Definition, agents.Definition, admin.Definition, health.Definition)
            .ListenH2c(endpoint.Address, endpoint.Port);
        await server.StartAsync(cancellationToken).ConfigureAwait(false);
        SchedulerLog.Listening(logger, options.EffectiveSchedulerId, string.Join(", ", server.Addresses));
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

        // 1. Refuse new streams, and end every agent and watch stream with UNAVAILABLE: agents reconnect (to
        //    another replica) and keep their attempts by re-announcing them; watchers resume from their last seq.
        SchedulerLog.ShutdownStep(logger, id, "ending agent and watch streams");
        await shutdown.CancelAsync().ConfigureAwait(false);

        // 2. Stop accepting connections and let in-flight unary calls finish.
        SchedulerLog.ShutdownStep(logger, id, "stopping the listener");
        if (server is not null)
        {
            await Quietly(server.StopAsync(timeout.Token)).ConfigureAwait(false);
            await server.DisposeAsync().ConfigureAwait(false);
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
