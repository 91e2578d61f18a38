using Xunit;

namespace ControlPlane.Tests.Support;

/// <summary>
/// A <see cref="RedisServer"/> (no persistence) for the lifetime of a test class or collection. When redis-server is
/// not installed the tests fail with the install command; they never skip.
/// </summary>
public sealed class RedisServerFixture : IAsyncLifetime
{
    private RedisServer? _server;

    /// <summary>The StackExchange.Redis configuration string: "127.0.0.1:port".</summary>
    public string Configuration => Server.Configuration;

    private RedisServer Server => _server ?? throw new InvalidOperationException("the Redis fixture has not started");

    public async Task InitializeAsync()
    {
        _server = new RedisServer();
        await _server.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
