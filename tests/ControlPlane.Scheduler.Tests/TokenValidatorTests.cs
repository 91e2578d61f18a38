using ControlPlane.Scheduler.Security;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

/// <summary>The lookup cache in front of the token store: bounded, and not one a flood of made-up tokens can empty.</summary>
public sealed class TokenValidatorTests
{
    [Fact]
    public async Task FloodOfUnknownTokens_KnownTokensAnswerStaysCached()
    {
        var store = new CountingStore();
        var secret = TokenSecrets.Create();
        var hash = TokenSecrets.Hash(secret);
        await store.PutAsync(new ApiToken(hash, "ci", TokenRole.Submitter, "default", null, DateTimeOffset.UtcNow, null, null), replace: false, CancellationToken.None);
        var time = new ManualTimeProvider(DateTimeOffset.UtcNow);
        using var validator = new TokenValidator(store, time);

        await validator.FindAsync(hash, CancellationToken.None);
        for (var i = 0; i < 3 * TokenValidator.MaxEntries; i++)
        {
            Assert.Null(await validator.FindAsync(TokenSecrets.Hash(TokenSecrets.Create()), CancellationToken.None));
        }

        var again = await validator.FindAsync(hash, CancellationToken.None);

        Assert.Equal("ci", again?.Name);
        Assert.Equal(1, store.LookupsOf(hash));
    }

    [Fact]
    public async Task CachedAnswer_AfterCacheTime_IsReadAgain()
    {
        var store = new CountingStore();
        var hash = TokenSecrets.Hash(TokenSecrets.Create());
        var time = new ManualTimeProvider(DateTimeOffset.UtcNow);
        using var validator = new TokenValidator(store, time);

        await validator.FindAsync(hash, CancellationToken.None);
        await validator.FindAsync(hash, CancellationToken.None);
        time.Advance(TokenValidator.CacheTime);
        await validator.FindAsync(hash, CancellationToken.None);

        Assert.Equal(2, store.LookupsOf(hash));
    }

    [Fact]
    public async Task LookupOverlappingARevoke_ItsAnswerIsNotRemembered()
    {
        var store = new CountingStore();
        var hash = TokenSecrets.Hash(TokenSecrets.Create());
        await store.PutAsync(new ApiToken(hash, "ci", TokenRole.Submitter, "default", null, DateTimeOffset.UtcNow, null, null), replace: false, CancellationToken.None);
        using var validator = new TokenValidator(store, new ManualTimeProvider(DateTimeOffset.UtcNow));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        store.Hold = release.Task;

        // The lookup reads the token, then the revoke (through this replica) lands before the lookup caches its answer.
        var lookup = validator.FindAsync(hash, CancellationToken.None);
        await store.RevokeAsync("default", "ci", DateTimeOffset.UtcNow, CancellationToken.None);
        validator.Invalidate();
        release.SetResult();
        await lookup;
        store.Hold = null;
        var after = await validator.FindAsync(hash, CancellationToken.None);

        Assert.NotNull(after?.RevokedAt);
    }

    private sealed class CountingStore : ITokenStore
    {
        private readonly EmbeddedTokenStore _inner = new();
        private readonly Dictionary<string, int> _lookups = new(StringComparer.Ordinal);

        public int LookupsOf(string hash)
        {
            lock (_lookups)
            {
                return _lookups.GetValueOrDefault(hash);
            }
        }

        /// <summary>While set, a lookup reads the token at once but answers only when this completes.</summary>
        public Task? Hold { get; set; }

        public async Task<ApiToken?> FindAsync(string hash, CancellationToken cancellationToken)
        {
            lock (_lookups)
            {
                _lookups[hash] = _lookups.GetValueOrDefault(hash) + 1;
            }

            var found = await _inner.FindAsync(hash, cancellationToken);
            if (Hold is { } hold)
            {
                await hold;
            }

            return found;
        }

        public Task<bool> PutAsync(ApiToken token, bool replace, CancellationToken cancellationToken) => _inner.PutAsync(token, replace, cancellationToken);

        public Task<IReadOnlyList<ApiToken>> ListAsync(CancellationToken cancellationToken) => _inner.ListAsync(cancellationToken);

        public Task<ApiToken?> RevokeAsync(string ns, string name, DateTimeOffset at, CancellationToken cancellationToken) => _inner.RevokeAsync(ns, name, at, cancellationToken);
    }
}
