using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>
/// The stores of every namespace over one Redis connection: each namespace's keys under its own hash tag, the
/// registry every replica reads, and a namespace whose data is in another format refused alone.
/// </summary>
public sealed class RedisNamespaceStoresTests : IAsyncLifetime
{
    private readonly RedisServer _redis = new();
    private ConnectionMultiplexer _connection = null!;
    private IDatabase _db = null!;

    public async Task InitializeAsync()
    {
        await _redis.StartAsync();
        _connection = await ConnectionMultiplexer.ConnectAsync(RedisRunStore.CreateConfiguration(_redis.Configuration));
        _db = _connection.GetDatabase();
    }

    public async Task DisposeAsync()
    {
        _connection.Dispose();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task Open_TwoNamespaces_KeysStayUnderEachOnesTagAndTheRegistryListsBoth()
    {
        await using var stores = await RedisNamespaceStores.ConnectAsync(_redis.Configuration, new RunStoreOptions(), NullLogger.Instance);
        var a = await stores.OpenAsync("team-a");
        var b = await stores.OpenAsync("team-b");

        var runOfA = (await a.SubmitRunAsync(Named("of-a", Shell("s")), null)).Run;
        var runOfB = (await b.SubmitRunAsync(Named("of-b", Shell("s")), null)).Run;
        var keys = _redis.CliAsync("--scan");
        var listed = await stores.ListAsync();

        Assert.Same(a, await stores.OpenAsync("team-a"));
        Assert.Null(await a.GetRunAsync(runOfB.Id));
        Assert.Null(await b.GetRunAsync(runOfA.Id));
        Assert.Equal([runOfA.Id], (await a.ListRunsAsync(new RunQuery(RunState.Unspecified, null, 0, null))).Runs.Select(r => r.Id));
        Assert.Equal(["team-a", "team-b"], listed);
        var all = (await keys).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(all, k => Assert.True(
            k.StartsWith("cp:{team-a}:", StringComparison.Ordinal) || k.StartsWith("cp:{team-b}:", StringComparison.Ordinal) || k.StartsWith("cp:{_", StringComparison.Ordinal),
            $"key {k} is under neither namespace"));
        Assert.Contains(all, k => k.StartsWith("cp:{team-a}:r:", StringComparison.Ordinal));
        Assert.Contains(all, k => k.StartsWith("cp:{team-b}:r:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Open_OneNamespaceInAnotherFormat_RefusedWithFailedPreconditionWhileOthersOpen()
    {
        await _db.StringSetAsync("cp:{newer}:format", "99");
        await using var stores = await RedisNamespaceStores.ConnectAsync(_redis.Configuration, new RunStoreOptions(), NullLogger.Instance);

        var ex = await Assert.ThrowsAsync<RunStoreException>(() => stores.OpenAsync("newer"));
        var other = await stores.OpenAsync("fine");

        Assert.Equal(RunStoreError.FailedPrecondition, ex.Error);
        Assert.Equal(ErrorReason.StoreFormatMismatch, ex.Reason);
        Assert.Contains("format 99", ex.Message, StringComparison.Ordinal);
        Assert.Equal(["fine"], await stores.ListAsync());
        Assert.NotNull(other);
    }

    [Fact]
    public async Task Open_RedisUnreachable_UnavailableAndAnOpenAfterItComesBackSucceeds()
    {
        await using var stores = await RedisNamespaceStores.ConnectAsync(_redis.Configuration, new RunStoreOptions(), NullLogger.Instance);
        await _redis.StopAsync();

        var ex = await Assert.ThrowsAsync<RunStoreException>(() => stores.OpenAsync("later"));
        await _redis.StartAsync();
        var store = await OpenEventuallyAsync(stores, "later");

        Assert.Equal(RunStoreError.Unavailable, ex.Error);
        Assert.NotNull(await store.SubmitRunAsync(Named("after", Shell("s")), null));
    }

    private static async Task<IRunStore> OpenEventuallyAsync(RedisNamespaceStores stores, string ns)
    {
        // The multiplexer reconnects in the background; each open that fails is forgotten, so a later one can succeed.
        for (var i = 0; ; i++)
        {
            try
            {
                return await stores.OpenAsync(ns);
            }
            catch (RunStoreException) when (i < 100)
            {
                await Task.Delay(100);
            }
        }
    }
}
