using ControlPlane.Scheduler.Security;
using ControlPlane.V1;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Audit;

/// <summary>
/// The service layer's entry point to the audit trail: a service method calls <see cref="RecordAsync"/> once its action
/// took effect, and the caller's credential (token name, "certificate:&lt;CN&gt;", or "anonymous" with authentication
/// off) and role are taken from the call. Pass names only: never a token secret or a secret value.
/// </summary>
internal sealed partial class AuditTrail(IAuditStore store, ILogger logger)
{
    /// <summary>The actor of a call that was not authenticated (the scheduler runs with authentication off).</summary>
    public const string Anonymous = "anonymous";

    public IAuditStore Store { get; } = store;

    /// <summary>
    /// Records that the caller of <paramref name="context"/> did <paramref name="action"/> (one of
    /// <see cref="AuditActions"/>) to <paramref name="target"/>. The action has already happened, so a store that
    /// cannot record it is logged, not thrown to the caller; nor does the caller's cancellation drop the entry.
    /// </summary>
    public async Task RecordAsync(ServerCallContext context, string action, string target, string detail = "")
    {
        ArgumentNullException.ThrowIfNull(context);
        var user = CallerClaims.UserOf(context);
        var actor = CallerClaims.TokenNameOf(user) ?? Anonymous;
        var role = CallerClaims.RoleOf(user) is { } held ? AuthorizationTable.RoleName(held) : "";
        try
        {
            await Store.AppendAsync(new AuditRecord("", default, actor, role, action, target, AuditOutcome.Succeeded, detail), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            NotRecorded(logger, ex, action, target, actor);
        }
    }

    [LoggerMessage(EventId = 170, Level = LogLevel.Error, Message = "The audit trail could not record {Action} on {Target} by {Actor}; the action took effect")]
    private static partial void NotRecorded(ILogger logger, Exception exception, string action, string target, string actor);
}
