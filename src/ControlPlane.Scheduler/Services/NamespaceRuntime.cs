using ControlPlane.Scheduler.Audit;
using ControlPlane.Scheduler.Security;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Services;

/// <summary>
/// One namespace's part of a replica: its store, its report pipeline and maintenance loop, the signal hub its agent
/// and watch streams wait on, its secrets and its audit trail. Nothing here is shared with another namespace, so an
/// agent of one namespace can only ever be handed steps of its own.
/// </summary>
internal sealed class NamespaceRuntime
{
    private readonly MaintenanceLoop _maintenance;
    private readonly IAsyncDisposable _subscription;

    private NamespaceRuntime(string name, IRunStore store, ReportPipeline pipeline, SignalHub hub, MaintenanceLoop maintenance, IAsyncDisposable subscription, SecretVault secrets, AuditTrail audit)
    {
        Name = name;
        Store = store;
        Pipeline = pipeline;
        Hub = hub;
        _maintenance = maintenance;
        _subscription = subscription;
        Secrets = secrets;
        Audit = audit;
    }

    public string Name { get; }

    public IRunStore Store { get; }

    public ReportPipeline Pipeline { get; }

    public SignalHub Hub { get; }

    /// <summary>The namespace's secrets and the key that opens them (none when no key is configured).</summary>
    public SecretVault Secrets { get; }

    /// <summary>Where the namespace's services record who did what.</summary>
    public AuditTrail Audit { get; }

    /// <summary>Subscribes to the store's signals, then starts the pipeline and the maintenance loop.</summary>
    public static async Task<NamespaceRuntime> StartAsync(
        string name,
        IRunStore store,
        SchedulerOptions options,
        ISecretStore secretStore,
        SecretCipher? cipher,
        IAuditStore auditStore,
        TimeProvider time,
        ILogger logger,
        CancellationToken cancellationToken)
    {
        var hub = new SignalHub();
        var subscription = await store.SubscribeAsync(hub.OnSignal, cancellationToken).ConfigureAwait(false);
        var pipeline = new ReportPipeline(store, options.ReportBatch, logger, time);
        pipeline.Start();
        var maintenance = new MaintenanceLoop(store, options, time, logger);
        maintenance.Start();
        return new NamespaceRuntime(name, store, pipeline, hub, maintenance, subscription, new SecretVault(secretStore, cipher, logger, name, opensUnboundValues: name == options.Namespace), new AuditTrail(auditStore, logger));
    }

    /// <summary>Commits the reports already received (shutdown step 3); gives up on those waiting for an unreachable store when <paramref name="cancellationToken"/> fires.</summary>
    public Task CompletePipelineAsync(CancellationToken cancellationToken) => Pipeline.CompleteAsync(cancellationToken);

    /// <summary>Stops the maintenance loop and the signal subscription (shutdown steps 4 and 5).</summary>
    public async Task StopAsync()
    {
        await _maintenance.StopAsync().ConfigureAwait(false);
        await _subscription.DisposeAsync().ConfigureAwait(false);
    }
}
