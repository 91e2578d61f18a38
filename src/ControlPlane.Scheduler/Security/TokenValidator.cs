using Microsoft.Extensions.Caching.Memory;

namespace ControlPlane.Scheduler.Security;

/// <summary>
/// Looks tokens up by hash, remembering each answer for <see cref="CacheTime"/> so a busy client costs one store read
/// per few seconds: a token revoked on another replica stops working within that time; one revoked through this
/// replica stops at once. Expiry is checked on every call against the clock, never cached.
/// </summary>
/// <remarks>
/// Known and unknown hashes are remembered in two bounded caches (Microsoft.Extensions.Caching.Memory, compacted when
/// full), so a flood of made-up tokens can neither grow memory nor push the real tokens' answers out.
/// </remarks>
public sealed class TokenValidator : IDisposable
{
    /// <summary>How long a lookup is reused: the longest a revocation made on another replica takes to bite.</summary>
    public static readonly TimeSpan CacheTime = TimeSpan.FromSeconds(2);

    /// <summary>Most remembered lookups in each cache; past it the oldest are compacted away.</summary>
    internal const int MaxEntries = 10_000;

    private readonly ITokenStore _store;
    private readonly TimeProvider _time;
    private readonly MemoryCache _known = new(new MemoryCacheOptions { SizeLimit = MaxEntries, CompactionPercentage = 0.25 });
    private readonly MemoryCache _unknown = new(new MemoryCacheOptions { SizeLimit = MaxEntries, CompactionPercentage = 0.25 });
    private long _generation;

    public TokenValidator(ITokenStore store, TimeProvider time)
    {
        _store = store;
        _time = time;
    }

    public ITokenStore Store => _store;

    /// <summary>The token with this hash (revoked or expired ones included, so the caller can say which); null when unknown.</summary>
    public async Task<ApiToken?> FindAsync(string hash, CancellationToken cancellationToken)
    {
        // The age is measured on the injected clock; the caches only bound how many answers are kept.
        if ((_known.TryGetValue(hash, out Lookup? entry) || _unknown.TryGetValue(hash, out entry)) && entry is not null && _time.GetElapsedTime(entry.At) < CacheTime)
        {
            return entry.Token;
        }

        // A lookup that overlaps an Invalidate may have read the token before its revocation: its answer is used once
        // but not remembered, so the revoked token stops working at once on this replica.
        var generation = Volatile.Read(ref _generation);
        var token = await _store.FindAsync(hash, cancellationToken).ConfigureAwait(false);
        if (generation == Volatile.Read(ref _generation))
        {
            var lookup = new Lookup(token, _time.GetTimestamp());
            (token is null ? _unknown : _known).Set(hash, lookup, new MemoryCacheEntryOptions { Size = 1 });
            if (token is not null)
            {
                _unknown.Remove(hash);
            }
        }

        return token;
    }

    /// <summary>Forgets every cached lookup: after a revoke or replacement through this replica.</summary>
    public void Invalidate()
    {
        Interlocked.Increment(ref _generation);
        _known.Clear();
        _unknown.Clear();
    }

    public void Dispose()
    {
        _known.Dispose();
        _unknown.Dispose();
    }

    private sealed record Lookup(ApiToken? Token, long At);
}
