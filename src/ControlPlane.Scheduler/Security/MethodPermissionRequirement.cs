using ControlPlane.V1;
using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;

namespace ControlPlane.Scheduler.Security;

/// <summary>
/// The authorization policy's requirement: the namespace the call names (the <c>cp-namespace</c> header) is its
/// token's, or the token's is every namespace; and the token's role holds the permission
/// <see cref="AuthorizationTable"/> gives the called gRPC method.
/// </summary>
internal sealed class MethodPermissionRequirement
    : AuthorizationHandler<MethodPermissionRequirement>, IAuthorizationRequirement
{
    /// <summary>The policy every authenticated service endpoint requires.</summary>
    public const string PolicyName = "cp-method-table";

    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, MethodPermissionRequirement requirement)
    {
        if (context.Resource is not HttpContext http || CallerClaims.RoleOf(context.User) is not { } role)
        {
            return Task.CompletedTask;
        }

        var tokenName = CallerClaims.TokenNameOf(context.User);
        var ns = CallNamespace.TokenNamespaceOf(context.User) ?? "";
        var requested = http.Request.Headers[CallNamespace.Header].FirstOrDefault();
        if (CallNamespace.Refusal(tokenName, ns, requested) is { } refusal)
        {
            AuthFailure.Denied(ErrorReason.NamespaceNotAllowed, refusal,
                ("token_name", tokenName), ("namespace", ns), ("requested", requested)).Attach(http);
            context.Fail();
            return Task.CompletedTask;
        }

        var method = http.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>()?.Method.FullName ?? http.Request.Path.Value ?? "";
        if (!AuthorizationTable.Allows(role, method))
        {
            var roleName = AuthorizationTable.RoleName(role);
            AuthFailure.Denied(ErrorReason.RoleNotAllowed,
                $"the token '{tokenName}' has role {roleName}, which may not call {method.TrimStart('/')}; use a token whose role allows it (see the role table in README.md)",
                ("token_name", tokenName), ("role", roleName), ("method", method)).Attach(http);
            context.Fail();
            return Task.CompletedTask;
        }

        context.Succeed(requirement);
        return Task.CompletedTask;
    }
}
