namespace ControlPlane.Scheduler.Security;

/// <summary>
/// Where bearer tokens live: the embedded store in-process, or Redis for several replicas. Implementations keep only
/// hashes; every method is atomic on its own.
/// </summary>
public interface ITokenStore
{
    /// <summary>
    /// Stores <paramref name="token"/>. Returns false, storing nothing, when an unrevoked token of the same name and
    /// namespace exists and <paramref name="replace"/> is false; with it, that token (and a revoked one) is replaced.
    /// </summary>
    Task<bool> PutAsync(ApiToken token, bool replace, CancellationToken cancellationToken);

    /// <summary>The token whose hash is <paramref name="hash"/>, revoked or not; null when there is none.</summary>
    Task<ApiToken?> FindAsync(string hash, CancellationToken cancellationToken);

    /// <summary>Every token, revoked ones included.</summary>
    Task<IReadOnlyList<ApiToken>> ListAsync(CancellationToken cancellationToken);

    /// <summary>Marks the token revoked at <paramref name="at"/> (kept if already revoked); null when there is none.</summary>
    Task<ApiToken?> RevokeAsync(string ns, string name, DateTimeOffset at, CancellationToken cancellationToken);
}
