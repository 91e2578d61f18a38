using ControlPlane.Scheduler.Audit;
using ControlPlane.Scheduler.Tests;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using StackExchange.Redis;
using Xunit;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>The audit contract on a real Redis, plus what only Redis shows: one capped stream under the namespace's hash tag.</summary>
public sealed class RedisAuditStoreTests(RedisServerFixture redis) : AuditStoreContractTests, IClassFixture<RedisServerFixture>, IAsyncLifetime
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

    protected override Task<IAuditStore> CreateStoreAsync() =>
        Task.FromResult<IAuditStore>(new RedisAuditStore(_connection!.GetDatabase(), "a-" + Guid.NewGuid().ToString("N")[..12]));

    [Fact]
    public async Task Append_PastCapacity_OneStreamUnderTheNamespaceTrimmedToAboutCapacity()
    {
        var ns = "a-" + Guid.NewGuid().ToString("N")[..12];
        var store = new RedisAuditStore(_connection!.GetDatabase(), ns, capacity: 100);
        for (var i = 0; i < 1000; i++)
        {
            await store.AppendAsync(new AuditRecord("", default, "ci", "admin", AuditActions.RunSubmit, "run-" + i, AuditOutcome.Succeeded, ""), CancellationToken.None);
        }

        var keys = _connection.GetServers()[0].Keys(pattern: "cp:{" + ns + "}:*").Select(k => (string)k!).ToList();
        var length = await _connection.GetDatabase().StreamLengthAsync("cp:{" + ns + "}:audit");

        Assert.Equal(["cp:{" + ns + "}:audit"], keys);

        // MAXLEN ~ trims whole stream nodes (stream-node-max-entries, 100 by default).
        Assert.InRange(length, 100, 200);
    }
}
