using ControlPlane.Scheduler.Security;
using ControlPlane.Scheduler.Tests;
using ControlPlane.Tests.Support;
using StackExchange.Redis;
using Xunit;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>The token contract on a real Redis, plus what only Redis can show: no secret is stored, keys stay under cp:{_auth}:.</summary>
public sealed class RedisTokenStoreTests(RedisServerFixture redis) : TokenStoreContractTests, IClassFixture<RedisServerFixture>, IAsyncLifetime
{
    private ConnectionMultiplexer? _connection;

    public async Task InitializeAsync() => _connection = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);

    public async Task DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }
    }

    protected override Task<ITokenStore> CreateStoreAsync() => Task.FromResult<ITokenStore>(new RedisTokenStore(_connection!.GetDatabase()));

    [Fact]
    public async Task Put_StoresNoSecret_OnlyKeysUnderTheAuthHashTag()
    {
        var store = await CreateStoreAsync();
        var secret = TokenSecrets.Create();
        var name = "k-" + Guid.NewGuid().ToString("N")[..8];
        await store.PutAsync(new ApiToken(TokenSecrets.Hash(secret), name, V1.TokenRole.Admin, "*", null, DateTimeOffset.UtcNow, null, null), replace: false, CancellationToken.None);

        var server = _connection!.GetServers()[0];
        var db = _connection.GetDatabase();
        var keys = server.Keys(pattern: "cp:{_auth}:*").ToList();
        var values = new List<string>();
        foreach (var key in keys)
        {
            values.AddRange((await db.HashGetAllAsync(key)).Select(e => $"{e.Name}={e.Value}"));
        }

        Assert.NotEmpty(keys);
        Assert.Contains(values, v => v == "name=" + name);
        Assert.DoesNotContain(values, v => v.Contains(secret[TokenSecrets.Prefix.Length..], StringComparison.Ordinal));
    }
}
