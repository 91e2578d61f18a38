using ControlPlane.V1;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

public abstract partial class RunStoreContractTests
{
    private const int StressRuns = 12;
    private const int StressFanOut = 8;
    private const int StressAgents = 4;
    private const int StressAgentSlots = 3;
    private const int StressRunCap = 3;
    private const int StressQueueCap = 5;
    private const int StressGpuCap = 2;

    [Fact]
    public async Task Claim_ConcurrentClaimersOverManyRuns_NoCapEverExceeded()
    {
        await Store.SetLimitAsync(LimitKind.Queue, "default", StressQueueCap);
        await Store.SetLimitAsync(LimitKind.ConcurrencyKey, "gpu", StressGpuCap);
        var runIds = new List<string>();
        for (var r = 0; r < StressRuns; r++)
        {
            var steps = new List<StepSpec> { Shell("start") };
            for (var i = 0; i < StressFanOut; i++)
            {
                steps.Add(Shell($"w{i}", "start").With(s => s.ConcurrencyKey = i % 3 == 0 ? "gpu" : ""));
            }

            steps.Add(Shell("join", [.. Enumerable.Range(0, StressFanOut).Select(i => $"w{i}")]));
            runIds.Add((await Store.SubmitRunAsync(Named($"stress-{r}", [.. steps]).With(s => s.Concurrency = StressRunCap), null)).Run.Id);
        }

        for (var a = 0; a < StressAgents; a++)
        {
            await Connect($"agent-{a}", StressAgentSlots);
        }

        var totalSteps = StressRuns * (StressFanOut + 2);
        var tracker = new InFlightTracker();
        var feed = new ChangeFeed();
        var completed = 0;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        async Task Worker(string agentId)
        {
            while (Volatile.Read(ref completed) < totalSteps)
            {
                var seen = feed.Version;
                var claimed = await Store.ClaimAsync(new ClaimRequest(agentId, StressAgentSlots));
                if (claimed.Count == 0)
                {
                    await feed.WaitForChangeAsync(seen, timeout.Token);
                    continue;
                }

                foreach (var a in claimed)
                {
                    tracker.Acquire(Keys(agentId, a));
                }

                // Let other claimers run while these attempts are held.
                await Task.Yield();
                foreach (var a in claimed)
                {
                    tracker.Release(Keys(agentId, a));
                    Assert.Equal(ReportOutcome.Accepted, await Complete(a, a.StepId));
                    Interlocked.Increment(ref completed);
                    feed.Bump();
                }
            }

            feed.Bump();
        }

        async Task StatsPoller()
        {
            while (Volatile.Read(ref completed) < totalSteps)
            {
                var seen = feed.Version;
                var stats = await Store.GetStatsAsync();
                foreach (var s in stats.Slots.Where(s => s.Limit > 0))
                {
                    Assert.True(s.Used <= s.Limit, $"{s.Kind} '{s.Name}' at {s.Used}/{s.Limit}");
                }

                await feed.WaitForChangeAsync(seen, timeout.Token);
            }
        }

        var tasks = Enumerable.Range(0, StressAgents).Select(a => Task.Run(() => Worker($"agent-{a}"))).Append(Task.Run(StatsPoller)).ToList();
        await Task.WhenAll(tasks);

        Assert.Equal(totalSteps, completed);
        foreach (var (key, max) in tracker.Maxima)
        {
            var cap = key.Split(':')[0] switch
            {
                "agent" => StressAgentSlots,
                "run" => StressRunCap,
                "queue" => StressQueueCap,
                "key" => StressGpuCap,
                _ => throw new InvalidOperationException(key),
            };
            Assert.True(max <= cap, $"{key} reached {max} in flight; cap {cap}");
        }

        Assert.True(tracker.Maxima["queue:default"] >= 1);
        foreach (var runId in runIds)
        {
            var run = (await Store.GetRunAsync(runId))!;
            Assert.Equal(RunState.Succeeded, run.State);
            var events = await ReadAllEventsAsync(runId);
            Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Seq));
            AssertHistoryFollowsTables(run);
        }

        await AssertNoLeaksAsync();
    }

    private static string[] Keys(string agentId, Assignment a)
    {
        var keys = new List<string> { $"agent:{agentId}", $"run:{a.RunId}", "queue:default" };
        if (a.Spec.ConcurrencyKey.Length > 0)
        {
            keys.Add($"key:{a.Spec.ConcurrencyKey}");
        }

        return [.. keys];
    }

    /// <summary>In-flight attempts per cap as the claimers see them, with the maximum ever reached.</summary>
    private sealed class InFlightTracker
    {
        private readonly Dictionary<string, int> _current = [];
        private readonly Dictionary<string, int> _maxima = [];

        public IReadOnlyDictionary<string, int> Maxima
        {
            get
            {
                lock (_current)
                {
                    return new Dictionary<string, int>(_maxima);
                }
            }
        }

        public void Acquire(string[] keys)
        {
            lock (_current)
            {
                foreach (var key in keys)
                {
                    var now = _current[key] = _current.GetValueOrDefault(key) + 1;
                    _maxima[key] = Math.Max(_maxima.GetValueOrDefault(key), now);
                }
            }
        }

        public void Release(string[] keys)
        {
            lock (_current)
            {
                foreach (var key in keys)
                {
                    _current[key]--;
                }
            }
        }
    }

    /// <summary>A version number claimers wait on: bumped whenever an attempt ends and caps may have freed.</summary>
    private sealed class ChangeFeed
    {
        private readonly object _gate = new();
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private long _version;

        public long Version
        {
            get
            {
                lock (_gate)
                {
                    return _version;
                }
            }
        }

        public void Bump()
        {
            TaskCompletionSource done;
            lock (_gate)
            {
                _version++;
                done = _changed;
                _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            done.TrySetResult();
        }

        public Task WaitForChangeAsync(long seen, CancellationToken cancellationToken)
        {
            lock (_gate)
            {
                return _version != seen ? Task.CompletedTask : _changed.Task.WaitAsync(cancellationToken);
            }
        }
    }
}
