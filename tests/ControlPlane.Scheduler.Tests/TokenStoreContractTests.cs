using ControlPlane.Scheduler.Security;
using ControlPlane.V1;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

/// <summary>What every <see cref="ITokenStore"/> does alike (embedded and Redis). Each test uses a namespace of its own.</summary>
public abstract class TokenStoreContractTests
{
    private readonly string _ns = "t-" + Guid.NewGuid().ToString("N")[..12];

    protected abstract Task<ITokenStore> CreateStoreAsync();

    private ApiToken Token(string name, TokenRole role = TokenRole.Reader, string? agentId = null, DateTimeOffset? expires = null) =>
        new(TokenSecrets.Hash(TokenSecrets.Create()), name, role, _ns, agentId, DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000), expires, null);

    [Fact]
    public async Task Put_ThenFind_RoundTripsEveryField()
    {
        var store = await CreateStoreAsync();
        var token = Token("gpu", TokenRole.Agent, "gpu-*", DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000));

        Assert.True(await store.PutAsync(token, replace: false, CancellationToken.None));
        var found = await store.FindAsync(token.Hash, CancellationToken.None);

        Assert.Equal(token, found);
        Assert.Null(await store.FindAsync(TokenSecrets.Hash("no such token at all"), CancellationToken.None));
    }

    [Fact]
    public async Task Put_NameTakenInNamespace_RefusedUnlessReplaceOrRevoked()
    {
        var store = await CreateStoreAsync();
        var first = Token("ci");
        var second = Token("ci");
        await store.PutAsync(first, replace: false, CancellationToken.None);

        var refused = await store.PutAsync(second, replace: false, CancellationToken.None);
        await store.RevokeAsync(_ns, "ci", DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_001_000), CancellationToken.None);
        var afterRevoke = await store.PutAsync(second, replace: false, CancellationToken.None);

        Assert.False(refused);
        Assert.True(afterRevoke);
        Assert.Null(await store.FindAsync(first.Hash, CancellationToken.None));
        Assert.Equal(second, await store.FindAsync(second.Hash, CancellationToken.None));
    }

    [Fact]
    public async Task Revoke_KeepsTheTokenMarkedAndTheFirstTime()
    {
        var store = await CreateStoreAsync();
        var token = Token("ci");
        await store.PutAsync(token, replace: false, CancellationToken.None);
        var at = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_005_000);

        var revoked = await store.RevokeAsync(_ns, "ci", at, CancellationToken.None);
        var again = await store.RevokeAsync(_ns, "ci", at.AddMinutes(5), CancellationToken.None);

        Assert.Equal(at, revoked!.RevokedAt);
        Assert.Equal(at, again!.RevokedAt);
        Assert.Equal(at, (await store.FindAsync(token.Hash, CancellationToken.None))!.RevokedAt);
        Assert.Null(await store.RevokeAsync(_ns, "nobody", at, CancellationToken.None));
    }

    [Fact]
    public async Task List_ReturnsEveryTokenOfTheNamespace()
    {
        var store = await CreateStoreAsync();
        await store.PutAsync(Token("a"), replace: false, CancellationToken.None);
        await store.PutAsync(Token("b", TokenRole.Submitter), replace: false, CancellationToken.None);

        var mine = (await store.ListAsync(CancellationToken.None)).Where(t => t.Namespace == _ns).Select(t => t.Name).Order(StringComparer.Ordinal);

        Assert.Equal(["a", "b"], mine);
    }
}

public sealed class EmbeddedTokenStoreTests : TokenStoreContractTests
{
    protected override Task<ITokenStore> CreateStoreAsync() => Task.FromResult<ITokenStore>(new EmbeddedTokenStore());
}
