using System.Security.Claims;
using ControlPlane.V1;
using Grpc.Core;

namespace ControlPlane.Scheduler.Security;

/// <summary>
/// The claims a caller's principal carries once its bearer token is accepted. Namespaces, gate decisions and the agent
/// identity check read them from here, so the names live in one place.
/// </summary>
public static class CallerClaims
{
    /// <summary>The token's name (unique in its namespace); ApproveGate records it as decided_by.</summary>
    public const string TokenName = "cp:token-name";

    /// <summary>The token's role: reader, submitter, approver, operator, admin or agent.</summary>
    public const string Role = "cp:role";

    /// <summary>The namespace the token acts in, or "*" for every namespace (admin and operator tokens).</summary>
    public const string Namespace = "cp:namespace";

    /// <summary>Agent tokens only: the agent id, or a prefix ending in "*", the token may connect as. Absent: any id.</summary>
    public const string AgentId = "cp:agent-id";

    /// <summary>The namespace value that stands for every namespace.</summary>
    public const string AnyNamespace = "*";

    /// <summary>The principal of an accepted token.</summary>
    public static ClaimsPrincipal Create(ApiToken token, string authenticationType)
    {
        ArgumentNullException.ThrowIfNull(token);
        var claims = new List<Claim>
        {
            new(TokenName, token.Name),
            new(Role, AuthorizationTable.RoleName(token.Role)),
            new(Namespace, token.Namespace),
        };
        if (!string.IsNullOrEmpty(token.AgentId))
        {
            claims.Add(new Claim(AgentId, token.AgentId));
        }

        return new ClaimsPrincipal(new ClaimsIdentity(claims, authenticationType, TokenName, Role));
    }

    /// <summary>The caller of a gRPC call as authentication left it; null for a call not served by ASP.NET Core (handler unit tests).</summary>
    public static ClaimsPrincipal? UserOf(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            return context.GetHttpContext().User;
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>The caller's token name, or null when the call was not authenticated (authentication off).</summary>
    public static string? TokenNameOf(ClaimsPrincipal? user) =>
        user?.Identity?.IsAuthenticated == true ? user.FindFirst(TokenName)?.Value : null;

    /// <summary>The caller's role, or null when the call was not authenticated.</summary>
    public static TokenRole? RoleOf(ClaimsPrincipal? user) =>
        user?.Identity?.IsAuthenticated == true && user.FindFirst(Role)?.Value is { } name ? AuthorizationTable.ParseRole(name) : null;
}
