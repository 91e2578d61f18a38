using ControlPlane.Tests.Support;
using StackExchange.Redis;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>Redis at its maxmemory ceiling (deploy/redis.conf's noeviction): a change is refused whole and retryable.</summary>
public sealed class MaxMemoryTests : IAsyncLifetime
{
    private readonly RedisServer _redis = new();
    private ConnectionMultiplexer _connection = null!;

    public async Task InitializeAsync()
    {
        await _redis.StartAsync();
        var configuration = RedisRunStore.CreateConfiguration(_redis.Configuration);
        configuration.AllowAdmin = true;
        _connection = await ConnectionMultiplexer.ConnectAsync(configuration);
    }

    public async Task DisposeAsync()
    {
        _connection.Dispose();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task Submit_AtMaxMemory_UnavailableSaysWhyAndWritesNothing()
    {
        await using var store = new RedisRunStore(_connection, "full", new RunStoreOptions(), new ManualTimeProvider());
        var run = (await store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        var db = _connection.GetDatabase();
        await db.ExecuteAsync("CONFIG", "SET", "maxmemory-policy", "noeviction");
        await db.StringSetAsync("ballast", new string('x', 4 << 20));
        await db.ExecuteAsync("CONFIG", "SET", "maxmemory", "1mb");
        var keys = (long)await db.ExecuteAsync("DBSIZE");

        var ex = await Assert.ThrowsAsync<RunStoreException>(() => store.SubmitRunAsync(Run(Shell("b")), null));

        Assert.Equal(RunStoreError.Unavailable, ex.Error);
        Assert.Contains("maxmemory", ex.Message, StringComparison.Ordinal);
        Assert.Equal(keys, (long)await db.ExecuteAsync("DBSIZE"));

        // Reads go on, and once memory is freed the same call succeeds.
        Assert.NotNull(await store.GetRunAsync(run.Id));
        await db.KeyDeleteAsync("ballast");
        await db.ExecuteAsync("CONFIG", "SET", "maxmemory", "0");
        await store.SubmitRunAsync(Run(Shell("b")), null);
    }
}
