using System.Collections.Frozen;
using ControlPlane.V1;

namespace ControlPlane.Scheduler.Security;

/// <summary>
/// The one authorization table: the permission each gRPC method needs and the permissions each role holds. The
/// authorization policy and the authorization-matrix test both read it; a method missing here is refused to every
/// caller, so a new RPC gets its row in the same change. README.md's role table mirrors it.
/// </summary>
public static class AuthorizationTable
{
    private const string Runs = "/controlplane.v1.RunService/";
    private const string Admin = "/controlplane.v1.AdminService/";
    private const string Auth = "/controlplane.v1.AuthService/";
    private const string Secrets = "/controlplane.v1.SecretService/";
    private const string Agents = "/controlplane.v1.AgentService/";
    private const string Audit = "/controlplane.v1.AuditService/";

    /// <summary>gRPC method full name ("/package.Service/Method") to the permission it needs.</summary>
    public static FrozenDictionary<string, Capability> Methods { get; } = new Dictionary<string, Capability>(StringComparer.Ordinal)
    {
        [Runs + "GetRun"] = Capability.Read,
        [Runs + "ListRuns"] = Capability.Read,
        [Runs + "WatchRun"] = Capability.Read,
        [Runs + "WatchRuns"] = Capability.Read,
        [Runs + "GetStepOutput"] = Capability.Read,
        [Runs + "SubmitRun"] = Capability.Submit,
        [Runs + "CancelRun"] = Capability.Submit,
        [Runs + "PauseRun"] = Capability.Submit,
        [Runs + "ResumeRun"] = Capability.Submit,
        [Runs + "RetryRun"] = Capability.Submit,
        [Runs + "ApproveGate"] = Capability.Approve,
        [Admin + "ListAgents"] = Capability.Read,
        [Admin + "GetStats"] = Capability.Read,
        [Admin + "DrainAgent"] = Capability.Operate,
        [Admin + "SetLimit"] = Capability.Operate,
        [Auth + "CreateToken"] = Capability.ManageTokens,
        [Auth + "ListTokens"] = Capability.ManageTokens,
        [Auth + "RevokeToken"] = Capability.ManageTokens,
        [Auth + "WhoAmI"] = Capability.Identify,
        [Secrets + "SetSecret"] = Capability.ManageSecrets,
        [Secrets + "ListSecrets"] = Capability.ManageSecrets,
        [Secrets + "DeleteSecret"] = Capability.ManageSecrets,
        [Agents + "Connect"] = Capability.ConnectAgent,
        [Audit + "ListAudit"] = Capability.ReadAudit,

        // Server reflection describes the API to tools (grpcurl); with authentication on, any reader may use it.
        ["/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"] = Capability.Read,
        ["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"] = Capability.Read,

        // Prometheus scrapes of the HTTP listener (an HTTP path, not a gRPC method): any reader may scrape.
        ["/metrics"] = Capability.Read,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Each role's permissions.</summary>
    public static FrozenDictionary<TokenRole, FrozenSet<Capability>> Roles { get; } = new Dictionary<TokenRole, FrozenSet<Capability>>
    {
        [TokenRole.Reader] = Set(Capability.Identify, Capability.Read),
        [TokenRole.Submitter] = Set(Capability.Identify, Capability.Read, Capability.Submit),
        [TokenRole.Approver] = Set(Capability.Identify, Capability.Read, Capability.Approve),
        [TokenRole.Operator] = Set(Capability.Identify, Capability.Read, Capability.Submit, Capability.Approve, Capability.Operate),
        [TokenRole.Admin] = Set(Enum.GetValues<Capability>()),
        [TokenRole.Agent] = Set(Capability.Identify, Capability.ConnectAgent),
    }.ToFrozenDictionary();

    /// <summary>Whether <paramref name="role"/> may call <paramref name="methodFullName"/>; false for a method without a row.</summary>
    public static bool Allows(TokenRole role, string methodFullName) =>
        Methods.TryGetValue(methodFullName, out var needed) && Roles.TryGetValue(role, out var held) && held.Contains(needed);

    /// <summary>Whether a token of <paramref name="role"/> may act in every namespace ("*").</summary>
    public static bool MaySpanNamespaces(TokenRole role) => role is TokenRole.Admin or TokenRole.Operator;

    /// <summary>"reader", "agent", ...: the role's name in cpctl, claims and the README.</summary>
    public static string RoleName(TokenRole role) => role switch
    {
        TokenRole.Reader => "reader",
        TokenRole.Submitter => "submitter",
        TokenRole.Approver => "approver",
        TokenRole.Operator => "operator",
        TokenRole.Admin => "admin",
        TokenRole.Agent => "agent",
        _ => "unspecified",
    };

    /// <summary>A role by name (reader, READER or TOKEN_ROLE_READER); null when there is none.</summary>
    public static TokenRole? ParseRole(string? name)
    {
        var text = (name ?? "").Trim().ToUpperInvariant();
        if (text.StartsWith("TOKEN_ROLE_", StringComparison.Ordinal))
        {
            text = text["TOKEN_ROLE_".Length..];
        }

        foreach (var role in Roles.Keys)
        {
            if (RoleName(role).Equals(text, StringComparison.OrdinalIgnoreCase))
            {
                return role;
            }
        }

        return null;
    }

    private static FrozenSet<Capability> Set(params Capability[] permissions) => permissions.ToFrozenSet();
}
