using ControlPlane.Scheduler.Security;

namespace ControlPlane.Scheduler.Redis;

/// <summary>
/// The bearer tokens of the scheduler's Redis (<see cref="RedisTokenStore"/>, keys under <c>cp:{_auth}:</c>), so a
/// replica with a Redis store shares its tokens with every other replica without another connection.
/// </summary>
public sealed partial class RedisRunStore
{
    private RedisTokenStore TokenStore => _tokens ??= new RedisTokenStore(_db);

    Task<bool> ITokenStore.PutAsync(ApiToken token, bool replace, CancellationToken cancellationToken) => TokenStore.PutAsync(token, replace, cancellationToken);

    Task<ApiToken?> ITokenStore.FindAsync(string hash, CancellationToken cancellationToken) => TokenStore.FindAsync(hash, cancellationToken);

    Task<IReadOnlyList<ApiToken>> ITokenStore.ListAsync(CancellationToken cancellationToken) => TokenStore.ListAsync(cancellationToken);

    Task<ApiToken?> ITokenStore.RevokeAsync(string ns, string name, DateTimeOffset at, CancellationToken cancellationToken) => TokenStore.RevokeAsync(ns, name, at, cancellationToken);
}
