using System.Security.Claims;
using ControlPlane.Scheduler.Services;
using ControlPlane.V1;
using Grpc.Core;

namespace ControlPlane.Scheduler.Security;

/// <summary>Binds an agent stream to its credential: Hello.agent_id must be an id the caller's token names.</summary>
internal static class AgentCredential
{
    /// <summary>
    /// Throws PERMISSION_DENIED naming the id and the token when the authenticated caller's token may not connect as
    /// <paramref name="agentId"/>. Unauthenticated callers (authentication off) and tokens naming no agent id pass.
    /// </summary>
    public static void Check(ClaimsPrincipal? user, string agentId)
    {
        if (CallerClaims.TokenNameOf(user) is not { } tokenName)
        {
            return;
        }

        var pattern = user!.FindFirst(CallerClaims.AgentId)?.Value;
        if (!AgentIdPattern.Matches(pattern, agentId))
        {
            throw RpcErrors.WithReason(
                StatusCode.PermissionDenied,
                ErrorReason.AgentIdNotAllowed,
                $"the token '{tokenName}' may connect as agent id '{pattern}' only, not as '{agentId}'; give this agent its own token (cpctl auth token create --role agent --agent-id {agentId})",
                ("token_name", tokenName),
                ("agent_id", agentId));
        }
    }
}
