using ControlPlane.Tests.Support;
using ControlPlane.V1;
using StackExchange.Redis;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>GetRun reads the run's transitions, not its event stream, so its cost does not follow the volume of logs.</summary>
public sealed class GetRunCostTests : IAsyncLifetime
{
    private readonly RedisServer _redis = new();
    private RedisRunStore _store = null!;
    private ConnectionMultiplexer _connection = null!;

    public async Task InitializeAsync()
    {
        await _redis.StartAsync();
        _store = await RedisRunStore.ConnectAsync(_redis.Configuration, "cost", new RunStoreOptions(), new ManualTimeProvider());
        var configuration = RedisRunStore.CreateConfiguration(_redis.Configuration);
        configuration.AllowAdmin = true;
        _connection = await ConnectionMultiplexer.ConnectAsync(configuration);
    }

    public async Task DisposeAsync()
    {
        _connection.Dispose();
        await _store.DisposeAsync();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task GetRun_RunWithManyLogEvents_ReadsNoEventStreamAndKeepsItsHistory()
    {
        var run = (await _store.SubmitRunAsync(Run(Shell("a"), Shell("b", "a")), null)).Run;
        await _store.ConnectAgentAsync(new AgentRegistration("agent-1", "h", ["shell"], [], new Dictionary<string, string>(), 1, [], []));
        var a = Assert.Single(await _store.ClaimAsync(new ClaimRequest("agent-1", 1)));
        var logs = Enumerable.Range(0, 500).Select(i => new AttemptReport(new AttemptRef(a.RunId, a.StepId, a.FencingToken),
            new ConnectRequest { StepLog = new StepLog { FencingToken = a.FencingToken, Lines = { "line " + i } } })).ToList();
        await _store.ReportAsync(logs);

        var before = await XRangeCallsAsync();
        var got = (await _store.GetRunAsync(run.Id))!;
        var after = await XRangeCallsAsync();

        Assert.Equal(before, after);
        Assert.Equal(["STEP_STATE_READY", "STEP_STATE_ASSIGNED"], got.Steps[0].History.Select(h => h.ToState));
        Assert.Equal(["RUN_STATE_PENDING", "RUN_STATE_RUNNING"], got.History.Select(h => h.ToState));
        Assert.True(got.LastEventSeq > 500);
    }

    private async Task<long> XRangeCallsAsync()
    {
        var info = (string)(await _connection.GetDatabase().ExecuteAsync("INFO", "commandstats"))!;
        var line = info.Split('\n').FirstOrDefault(l => l.StartsWith("cmdstat_xrange:", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line.Split("calls=")[1].Split(',')[0], System.Globalization.CultureInfo.InvariantCulture);
    }
}
