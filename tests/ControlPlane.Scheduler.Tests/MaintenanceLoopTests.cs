using System.Reflection;
using System.Threading.Channels;
using ControlPlane.Scheduler.Services;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

/// <summary>The reaper loop across store outages: it freezes leases only after its calls failed, and reaps only once the freeze succeeded.</summary>
public sealed class MaintenanceLoopTests : IAsyncLifetime
{
    private static readonly TimeSpan Tick = TimeSpan.FromSeconds(1);
    private readonly ManualTimeProvider _time = new();
    private readonly EmbeddedRunStore _inner;
    private readonly IRunStore _store;
    private readonly SwitchableStore _switch;
    private readonly MaintenanceLoop _loop;

    public MaintenanceLoopTests()
    {
        _inner = new EmbeddedRunStore(new RunStoreOptions { LeaseDuration = TimeSpan.FromSeconds(30) }, _time);
        _store = SwitchableStore.Create(_inner, out _switch);
        _loop = new MaintenanceLoop(_store, new SchedulerOptions { MaintenanceInterval = Tick }, _time, NullLogger.Instance);
    }

    public async Task InitializeAsync()
    {
        await _inner.SubmitRunAsync(Run(Shell("a")), null);
        await _inner.ConnectAgentAsync(new AgentRegistration("agent-1", "host", ["shell"], [], new Dictionary<string, string>(), 1, [], []));
        Assert.Single(await _inner.ClaimAsync(new ClaimRequest("agent-1", 1)));
        _loop.Start();
    }

    public async Task DisposeAsync()
    {
        await _loop.StopAsync();
        await _inner.DisposeAsync();
    }

    [Fact]
    public async Task Loop_StoreAnswersAgainAfterFailures_FreezesTheOutageBeforeItsNextPass()
    {
        var reached = _time.GetUtcNow();
        Assert.Equal("maintenance", await TickAsync());

        // Unreachable for 40 s, longer than the 30 s lease: the first failing pass, then freezes that fail and no pass.
        _switch.Unreachable = true;
        var during = new List<string>();
        for (var i = 0; i < 40; i++)
        {
            during.Add(await TickAsync());
        }

        _switch.Unreachable = false;
        var freeze = await TickAsync();
        var pass = await _switch.Calls.Reader.ReadAsync(Timeout());

        // Passes go on while the outage is shorter than the lease less two heartbeats (20 s), which costs no lease.
        Assert.Equal([.. Enumerable.Repeat("maintenance failed", 19), .. Enumerable.Repeat("freeze failed", 21)], during);
        Assert.Equal($"freeze {reached + Tick:O} {_time.GetUtcNow():O} moved 00:00:30", freeze);
        Assert.Equal("maintenance", pass);
        var step = (await _inner.GetRunAsync((await _inner.ListRunsAsync(new RunQuery())).Runs[0].Id))!.Steps[0];
        Assert.Equal(StepState.Assigned, step.State);
        Assert.Equal(1, step.Attempt);
    }

    [Fact]
    public async Task Loop_NoFailedCall_NeverFreezesAndReapsExpiredLeases()
    {
        Assert.Equal("maintenance", await TickAsync());

        // A replica paused for longer than the lease (SIGSTOP) saw no failure: its next passes reap the lost lease.
        _time.Advance(TimeSpan.FromSeconds(40));
        var calls = new List<string>();
        var runId = (await _inner.ListRunsAsync(new RunQuery())).Runs[0].Id;
        while ((await _inner.GetRunAsync(runId))!.Steps[0].State != StepState.Ready)
        {
            calls.Add(await _switch.Calls.Reader.ReadAsync(Timeout()));
        }

        Assert.All(calls, c => Assert.Equal("maintenance", c));
    }

    [Fact]
    public async Task Loop_OutageShorterThanTheLeaseLessTwoHeartbeats_PassesGoOnAndNothingIsFrozen()
    {
        Assert.Equal("maintenance", await TickAsync());

        _switch.Unreachable = true;
        var during = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            during.Add(await TickAsync());
        }

        _switch.Unreachable = false;
        var after = new List<string> { await TickAsync(), await TickAsync() };

        Assert.Equal(Enumerable.Repeat("maintenance failed", 5), during);
        Assert.Equal(["maintenance", "maintenance"], after);
    }

    [Fact]
    public async Task Loop_StoreFull_PassesGoOnWithoutFreezing()
    {
        Assert.Equal("maintenance", await TickAsync());

        // Redis at maxmemory refuses writes, not connections: the passes (whose deletions free it) must go on.
        _switch.Full = true;
        var during = new List<string>();
        for (var i = 0; i < 25; i++)
        {
            during.Add(await TickAsync());
        }

        Assert.All(during, c => Assert.Equal("maintenance failed", c));
    }

    /// <summary>Moves the clock one maintenance interval and returns the store call the loop made on that tick.</summary>
    private async Task<string> TickAsync()
    {
        _time.Advance(Tick);
        return await _switch.Calls.Reader.ReadAsync(Timeout());
    }

    private static CancellationToken Timeout() => new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token;

    /// <summary>A store whose maintenance and freeze calls fail as unreachable while <see cref="Unreachable"/> is set; each such call is recorded.</summary>
    public class SwitchableStore : DispatchProxy
    {
        private IRunStore _inner = null!;
        private volatile bool _unreachable;
        private volatile bool _full;

        public bool Unreachable { get => _unreachable; set => _unreachable = value; }

        /// <summary>While set, maintenance and freeze calls fail as a full store (Redis at maxmemory) would.</summary>
        public bool Full { get => _full; set => _full = value; }

        public Channel<string> Calls { get; } = Channel.CreateUnbounded<string>();

        public static IRunStore Create(IRunStore inner, out SwitchableStore store)
        {
            var proxy = Create<IRunStore, SwitchableStore>();
            store = (SwitchableStore)(object)proxy;
            store._inner = inner;
            return proxy;
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            var name = targetMethod!.Name;
            if (name is not (nameof(IRunStore.RunMaintenanceAsync) or nameof(IRunStore.FreezeLeasesAsync)))
            {
                return targetMethod.Invoke(_inner, args);
            }

            var call = name == nameof(IRunStore.RunMaintenanceAsync) ? "maintenance" : "freeze";
            if (_unreachable || _full)
            {
                Calls.Writer.TryWrite(call + " failed");
                var outage = _full
                    ? new RunStoreException(RunStoreError.Unavailable, ErrorReason.StoreUnavailable, "the run store (Redis) is at its maxmemory limit: test") { StoreFull = true }
                    : new RunStoreException(RunStoreError.Unavailable, ErrorReason.StoreUnavailable, "the run store (Redis) cannot be reached: test outage");
                return name == nameof(IRunStore.RunMaintenanceAsync)
                    ? Task.FromException<MaintenanceResult>(outage)
                    : Task.FromException<LeaseFreezeResult>(outage);
            }

            // The embedded store completes synchronously, so the call is done once recorded.
            var result = targetMethod.Invoke(_inner, args);
            Calls.Writer.TryWrite(result is Task<LeaseFreezeResult> { IsCompletedSuccessfully: true } frozen
                ? $"freeze {(DateTimeOffset)args![0]!:O} {(DateTimeOffset)args[1]!:O} moved {frozen.Result.Shift}"
                : call);
            return result;
        }
    }
}
