using System.Collections.Concurrent;

namespace ControlPlane.Scheduler.Security;

/// <summary>
/// Looks tokens up by hash, remembering each answer for <see cref="CacheTime"/> so a busy client costs one store read
/// per few seconds: a token revoked on another replica stops working within that time; one revoked through this
/// replica stops at once. Expiry is checked on every call against the clock, never cached.
/// </summary>
public sealed class TokenValidator
{
    /// <summary>How long a lookup is reused: the longest a revocation made on another replica takes to bite.</summary>
    public static readonly TimeSpan CacheTime = TimeSpan.FromSeconds(2);

    /// <summary>Most remembered lookups; past it the cache starts over (unknown tokens cannot grow it without bound).</summary>
    private const int MaxEntries = 10_000;

    private readonly ITokenStore _store;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, (ApiToken? Token, long At)> _cache = new(StringComparer.Ordinal);

    public TokenValidator(ITokenStore store, TimeProvider time)
    {
        _store = store;
        _time = time;
    }

    public ITokenStore Store => _store;

    /// <summary>The token with this hash (revoked or expired ones included, so the caller can say which); null when unknown.</summary>
    public async Task<ApiToken?> FindAsync(string hash, CancellationToken cancellationToken)
    {
        if (_cache.TryGetValue(hash, out var entry) && _time.GetElapsedTime(entry.At) < CacheTime)
        {
            return entry.Token;
        }

        var token = await _store.FindAsync(hash, cancellationToken).ConfigureAwait(false);
        if (_cache.Count >= MaxEntries)
        {
            _cache.Clear();
        }

        _cache[hash] = (token, _time.GetTimestamp());
        return token;
    }

    /// <summary>Forgets every cached lookup: after a revoke or replacement through this replica.</summary>
    public void Invalidate() => _cache.Clear();
}
