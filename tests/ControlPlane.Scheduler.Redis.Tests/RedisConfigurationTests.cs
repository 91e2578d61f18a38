using Xunit;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>The multiplexer settings the store is built for.</summary>
public sealed class RedisConfigurationTests
{
    [Fact]
    public void CreateConfiguration_ManyFailedReconnects_StillTriesAgainWithinASecond()
    {
        // After a Redis restart the store must be back within a second of Redis, however many tries failed while it was
        // down: agents give up a lease once no renewal was confirmed for the lease less its stop margin.
        var policy = RedisRunStore.CreateConfiguration("127.0.0.1:6379").ReconnectRetryPolicy;

        Assert.NotNull(policy);
        for (var failedTries = 1; failedTries <= 30; failedTries++)
        {
            Assert.True(policy.ShouldRetry(failedTries, 1000), $"after {failedTries} failed tries, no new try 1 s after the last");
        }
    }
}
