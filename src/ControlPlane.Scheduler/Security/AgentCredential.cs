using System.Security.Claims;
using ControlPlane.Scheduler.Services;
using ControlPlane.V1;
using Grpc.Core;

namespace ControlPlane.Scheduler.Security;

/// <summary>Binds an agent stream to its credential: Hello.agent_id must be an id the caller's token or certificate names.</summary>
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

        // A token names one id or prefix; a client certificate its CN and each DNS name, every one an exact id.
        var patterns = user!.FindAll(CallerClaims.AgentId).Select(c => c.Value).ToList();
        if (patterns.Count > 0 && !patterns.Any(p => AgentIdPattern.Matches(p, agentId)))
        {
            var pattern = string.Join("' or '", patterns);
            var fix = tokenName.StartsWith(ClientCertificateIdentity.NamePrefix, StringComparison.Ordinal)
                ? $"issue this agent a certificate whose CN is '{agentId}'"
                : $"give this agent its own token (cpctl auth token create --role agent --agent-id {agentId})";
            throw RpcErrors.WithReason(
                StatusCode.PermissionDenied,
                ErrorReason.AgentIdNotAllowed,
                $"the token '{tokenName}' may connect as agent id '{pattern}' only, not as '{agentId}'; {fix}",
                ("token_name", tokenName),
                ("agent_id", agentId));
        }
    }
}
