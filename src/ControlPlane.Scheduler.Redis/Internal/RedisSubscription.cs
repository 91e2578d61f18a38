using StackExchange.Redis;

namespace ControlPlane.Scheduler.Redis.Internal;

/// <summary>One SubscribeAsync handler on the namespace's signal channel; disposing removes only that handler.</summary>
internal sealed class RedisSubscription(ISubscriber subscriber, RedisChannel channel, Action<RedisChannel, RedisValue> handler) : IAsyncDisposable
{
    public async ValueTask DisposeAsync()
    {
        try
        {
            await subscriber.UnsubscribeAsync(channel, handler).ConfigureAwait(false);
        }
        catch (RedisConnectionException)
        {
            // The connection is gone, and the subscription with it.
        }
    }
}
