using ControlPlane.Scheduler.Audit;
using ControlPlane.Scheduler.Internal;
using ControlPlane.Scheduler.Security;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Services;

/// <summary>What the gRPC services of one replica share: the store, the report pipeline, the signal hub, and the shutdown token.</summary>
internal sealed class SchedulerRuntime(
    SchedulerOptions options,
    IRunStore store,
    ReportPipeline pipeline,
    SignalHub hub,
    ILogger logger,
    CancellationToken shuttingDown)
{
    public SchedulerOptions Options { get; } = options;

    public IRunStore Store { get; } = store;

    public ReportPipeline Pipeline { get; } = pipeline;

    public SignalHub Hub { get; } = hub;

    public ILogger Logger { get; } = logger;

    /// <summary>Fires when the replica starts shutting down: streams end with UNAVAILABLE and health turns NOT_SERVING.</summary>
    public CancellationToken ShuttingDown { get; } = shuttingDown;

    /// <summary>Bearer tokens (also when authentication is off: AuthService manages them either way).</summary>
    public TokenValidator Tokens { get; init; } = new(new EmbeddedTokenStore(), TimeProvider.System);

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Where services record who did what (the store's trail when it keeps one, else an in-process one).</summary>
    public AuditTrail Audit { get; init; } = new(new EmbeddedAuditStore(), logger);

    /// <summary>The namespace's secrets and the key that opens them (none when no key is configured).</summary>
    public SecretVault Secrets { get; init; } = new(new EmbeddedSecretStore(), null, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

    /// <summary>Whether calls are authenticated (an admin token was configured).</summary>
    public bool AuthenticationEnabled => Options.AuthenticationEnabled;

    /// <summary>The agent and watch streams being served, which shutdown lets end before it closes the listener.</summary>
    public OpenStreams Streams { get; } = new();
}
