using ControlPlane.Scheduler.Internal;
using ControlPlane.Scheduler.Security;
using ControlPlane.V1;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Services;

/// <summary>
/// What the gRPC services of one replica share: the namespaces it serves (each with its store, report pipeline,
/// signal hub, secrets and audit trail), the tokens, and the shutdown token.
/// </summary>
internal sealed class SchedulerRuntime(
    SchedulerOptions options,
    NamespaceDirectory namespaces,
    ILogger logger,
    CancellationToken shuttingDown)
{
    public SchedulerOptions Options { get; } = options;

    public NamespaceDirectory Namespaces { get; } = namespaces;

    public ILogger Logger { get; } = logger;

    /// <summary>Fires when the replica starts shutting down: streams end with UNAVAILABLE and health turns NOT_SERVING.</summary>
    public CancellationToken ShuttingDown { get; } = shuttingDown;

    /// <summary>Bearer tokens (also when authentication is off: AuthService manages them either way).</summary>
    public TokenValidator Tokens { get; init; } = new(new EmbeddedTokenStore(), TimeProvider.System);

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>The replica's instruments (none for a runtime a test builds); GetStats reads its dispatch latencies.</summary>
    public SchedulerMetrics? Metrics { get; init; }

    /// <summary>Whether calls are authenticated (an admin token was configured).</summary>
    public bool AuthenticationEnabled => Options.AuthenticationEnabled;

    /// <summary>The agent and watch streams being served, which shutdown lets end before it closes the listener.</summary>
    public OpenStreams Streams { get; } = new();

    /// <summary>
    /// The name of the namespace <paramref name="context"/> acts in (see <see cref="CallNamespace"/>): INVALID_ARGUMENT
    /// for a malformed header, PERMISSION_DENIED for a header naming another namespace than the token's.
    /// </summary>
    public string NamespaceOf(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var requested = context.RequestHeaders.GetValue(CallNamespace.Header);
        if (requested is not null && !CallNamespace.IsValidName(requested))
        {
            throw RpcErrors.InvalidArgument(CallNamespace.Header,
                $"the {CallNamespace.Header} header is '{CallNamespace.Shorten(requested)}'; a namespace name matches {CallNamespace.PatternText}, e.g. \"{Options.Namespace}\"");
        }

        var user = CallerClaims.UserOf(context);
        var tokenNamespace = CallNamespace.TokenNamespaceOf(user);
        if (CallNamespace.Refusal(CallerClaims.TokenNameOf(user), tokenNamespace, requested) is { } refusal)
        {
            throw RpcErrors.WithReason(StatusCode.PermissionDenied, ErrorReason.NamespaceNotAllowed, refusal, ("namespace", tokenNamespace), ("requested", requested));
        }

        return tokenNamespace is null or CallerClaims.AnyNamespace ? requested ?? Options.Namespace : tokenNamespace;
    }

    /// <summary>
    /// The runtime of the namespace <paramref name="context"/> acts in, opened on first use. Only calls that make
    /// something there (<paramref name="create"/>) may create it; the others get NOT_FOUND for a namespace that does not exist.
    /// </summary>
    /// <remarks>A token of one namespace brings its namespace into being: an admin made the token for it.</remarks>
    public ValueTask<NamespaceRuntime> ForCallAsync(ServerCallContext context, bool create = false)
    {
        var ns = NamespaceOf(context);
        var scoped = CallNamespace.TokenNamespaceOf(CallerClaims.UserOf(context)) is { } tokenNamespace && tokenNamespace != CallerClaims.AnyNamespace;
        return Namespaces.GetAsync(ns, create || scoped, context.CancellationToken);
    }
}
