using ControlPlane.Scheduler.Tests;
using ControlPlane.Tests.Support;
using Xunit;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>The contract suite against a real redis-server; each test gets its own key namespace.</summary>
public sealed class RedisRunStoreTests(RedisServerFixture redis) : RunStoreContractTests, IClassFixture<RedisServerFixture>
{
    protected override async Task<IRunStore> CreateStoreAsync(RunStoreOptions options, TimeProvider time) =>
        await RedisRunStore.ConnectAsync(redis.Configuration, "t" + Guid.NewGuid().ToString("N")[..12], options, time);
}
