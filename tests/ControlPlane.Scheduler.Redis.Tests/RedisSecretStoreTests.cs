using ControlPlane.Scheduler.Security;
using ControlPlane.Scheduler.Tests;
using ControlPlane.Tests.Support;
using StackExchange.Redis;
using Xunit;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>The secret contract on a real Redis, plus where the keys live: under the store's own cp:{ns}: hash tag.</summary>
public sealed class RedisSecretStoreTests(RedisServerFixture redis) : SecretStoreContractTests, IClassFixture<RedisServerFixture>, IAsyncLifetime
{
    private readonly List<RedisRunStore> _stores = [];
    private ConnectionMultiplexer? _connection;

    public async Task InitializeAsync() => _connection = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);

    public async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            await store.DisposeAsync();
        }

        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }
    }

    private string LastNamespace { get; set; } = "";

    protected override Task<ISecretStore> CreateStoreAsync()
    {
        LastNamespace = "s-" + Guid.NewGuid().ToString("N")[..12];
        var store = new RedisRunStore(_connection!, LastNamespace, new RunStoreOptions(), TimeProvider.System);
        _stores.Add(store);
        return Task.FromResult<ISecretStore>(store);
    }

    [Fact]
    public async Task Put_KeysOnlyUnderTheNamespace()
    {
        var store = await CreateStoreAsync();
        await store.PutSecretAsync(new SecretRecord("db", new byte[] { 9, 9 }, [], DateTimeOffset.UtcNow, DateTimeOffset.UtcNow), CancellationToken.None);

        var keys = _connection!.GetServers()[0].Keys(pattern: $"*{LastNamespace}*").Select(k => (string)k!).Order(StringComparer.Ordinal).ToList();

        Assert.Equal([$"cp:{{{LastNamespace}}}:secret:db", $"cp:{{{LastNamespace}}}:secrets"], keys);
    }
}
