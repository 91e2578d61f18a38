using ControlPlane.Tests.Support;
using ControlPlane.V1;
using StackExchange.Redis;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Redis.Tests;

/// <summary>ListRuns with labels reads the label index: its cost follows the runs carrying the label, not all runs.</summary>
public sealed class LabelIndexTests : IAsyncLifetime
{
    private readonly RedisServer _redis = new();
    private RedisRunStore _store = null!;

    public async Task InitializeAsync()
    {
        await _redis.StartAsync();
        _store = await RedisRunStore.ConnectAsync(_redis.Configuration, "labels", new RunStoreOptions(), new ManualTimeProvider());
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task ListRuns_LabelNoRunCarries_ReadsNoRun()
    {
        for (var i = 0; i < 1000; i++)
        {
            await _store.SubmitRunAsync(Run(Shell("a")).With(r => r.Labels["team"] = "vision"), null);
        }

        var before = _store.RoundTrips;
        var page = await _store.ListRunsAsync(new RunQuery(RunState.Unspecified, new Dictionary<string, string> { ["team"] = "nobody" }, 100, null));

        Assert.Empty(page.Runs);
        Assert.Null(page.NextPageToken);
        Assert.InRange(_store.RoundTrips - before, 1, 2);
    }

    [Fact]
    public async Task ListRuns_ByLabels_PagesThroughTheCarriersOnly()
    {
        var carriers = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            var run = (await _store.SubmitRunAsync(Run(Shell("a")).With(r =>
            {
                r.Labels["team"] = i % 3 == 0 ? "vision 😀" : "audio";
                r.Labels["tier"] = i % 2 == 0 ? "gold" : "free";
            }), null)).Run;
            if (i % 3 == 0 && i % 2 == 0)
            {
                carriers.Add(run.Id);
            }
        }

        var filter = new Dictionary<string, string> { ["team"] = "vision 😀", ["tier"] = "gold" };
        var seen = new List<string>();
        string? token = null;
        do
        {
            var page = await _store.ListRunsAsync(new RunQuery(RunState.Unspecified, filter, 2, token));
            seen.AddRange(page.Runs.Select(r => r.Id));
            token = page.NextPageToken;
        }
        while (token is not null);

        carriers.Reverse();
        Assert.Equal(carriers, seen);
    }
}
