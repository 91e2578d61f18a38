using ControlPlane.V1;
using Grpc.Core;

namespace ControlPlane.Scheduler.Security;

/// <summary>
/// Why a call was refused, kept on the request (HttpContext.Items) by the authentication and authorization handlers
/// so the challenge or forbid response can carry the reason as a gRPC status with an ErrorInfo.
/// </summary>
internal sealed record AuthFailure(StatusCode Code, ErrorReason Reason, string Message, IReadOnlyList<(string Key, string? Value)> Metadata)
{
    private const string ItemKey = "cp-auth-failure";

    public void Attach(Microsoft.AspNetCore.Http.HttpContext context) => context.Items[ItemKey] = this;

    public static AuthFailure? Of(Microsoft.AspNetCore.Http.HttpContext context) => context.Items.TryGetValue(ItemKey, out var value) ? value as AuthFailure : null;

    public static AuthFailure Unauthenticated(ErrorReason reason, string message, string? tokenName = null) =>
        new(StatusCode.Unauthenticated, reason, message, [("token_name", tokenName)]);

    public static AuthFailure Denied(ErrorReason reason, string message, params (string Key, string? Value)[] metadata) =>
        new(StatusCode.PermissionDenied, reason, message, metadata);
}
