using ControlPlane.V1;

namespace ControlPlane.Scheduler.Security;

/// <summary>
/// A stored bearer token: never the secret, only its SHA-256 hash (lower-case hex), with what the token may do.
/// </summary>
/// <param name="Hash">SHA-256 of the token's UTF-8 text, 64 lower-case hex digits (<see cref="TokenSecrets.Hash"/>).</param>
/// <param name="Name">Unique within <paramref name="Namespace"/>.</param>
/// <param name="Namespace">A namespace name, or "*" (admin and operator only).</param>
/// <param name="AgentId">Agent role only: an agent id or a prefix ending in "*"; null lets it connect as any id.</param>
public sealed record ApiToken(
    string Hash,
    string Name,
    TokenRole Role,
    string Namespace,
    string? AgentId,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset? RevokedAt)
{
    /// <summary>The token as ListTokens shows it: everything but the hash.</summary>
    public TokenInfo ToInfo()
    {
        var info = new TokenInfo
        {
            Name = Name,
            Role = Role,
            Namespace = Namespace,
            AgentId = AgentId ?? "",
            CreatedAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(CreatedAt),
        };
        if (ExpiresAt is { } expires)
        {
            info.ExpiresAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(expires);
        }

        if (RevokedAt is { } revoked)
        {
            info.RevokedAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(revoked);
        }

        return info;
    }
}
