using System.Diagnostics;
using ControlPlane.Tests.Support;

namespace ControlPlane.Soak;

/// <summary>A time an agent (or, with an empty agent, every agent: Redis) was cut off by a fault.</summary>
internal sealed record Outage(string Agent, string Kind, DateTime From, DateTime To)
{
    public TimeSpan Length => To - From;
}

/// <summary>
/// Injects one fault at a time, at seeded random moments, each undone before the next (a killed process is started
/// again, a stopped one continued): kill -9 and SIGSTOP beyond the lease of agents and replicas, clean Redis restarts,
/// exactly one kill -9 of Redis (at a seeded moment in the middle of the soak), and cuts and blackholes of the proxied
/// agent's connection.
/// </summary>
internal sealed class Chaos(SoakCluster cluster, StepProcesses processes, Journal journal, int seed, IReadOnlySet<string> kinds, TimeSpan duration)
{
    private static readonly (string Kind, int Weight)[] Weights =
    [
        (FaultKinds.AgentKill, 3), (FaultKinds.ReplicaKill, 2), (FaultKinds.AgentStop, 2), (FaultKinds.ReplicaStop, 1),
        (FaultKinds.RedisRestart, 2), (FaultKinds.ProxyCut, 1), (FaultKinds.ProxyBlackhole, 1),
    ];

    private static readonly TimeSpan ReconnectTimeout = TimeSpan.FromSeconds(90);

    private readonly Random _random = new(unchecked(seed * 31 + 17));

    /// <summary>How long the proxied agent took to notice each blackholed connection and connect again.</summary>
    public List<TimeSpan> BlackholeNoticed { get; } = [];

    /// <summary>
    /// Each time an agent could not reach a scheduler, from the fault to the moment it could again (its process killed or
    /// stopped, its replica killed or stopped, its connection cut or blackholed); Redis outages with an empty agent.
    /// </summary>
    public List<Outage> Outages { get; } = [];

    /// <summary>When Redis was killed with SIGKILL; null until it was.</summary>
    public DateTime? RedisKilledAt { get; private set; }

    public async Task RunAsync(CancellationToken stop)
    {
        var weights = Weights.Where(w => kinds.Contains(w.Kind)).ToArray();
        TimeSpan? redisKillAt = kinds.Contains(FaultKinds.RedisKill) ? duration * (0.3 + 0.3 * _random.NextDouble()) : null;
        if (weights.Length == 0 && redisKillAt is null)
        {
            return;
        }

        var clock = Stopwatch.StartNew();
        await Delay(TimeSpan.FromSeconds(5), stop);
        while (!stop.IsCancellationRequested)
        {
            string kind;
            if (redisKillAt is { } at && RedisKilledAt is null && (clock.Elapsed >= at || weights.Length == 0))
            {
                if (clock.Elapsed < at)
                {
                    await Delay(at - clock.Elapsed, stop);
                    if (stop.IsCancellationRequested)
                    {
                        return;
                    }
                }

                kind = FaultKinds.RedisKill;
            }
            else if (weights.Length > 0)
            {
                kind = Pick(weights);
            }
            else
            {
                return;
            }

            await InjectAsync(kind);
            await Delay(TimeSpan.FromMilliseconds(_random.Next(3000, 8000)), stop);
        }
    }

    private async Task InjectAsync(string kind)
    {
        switch (kind)
        {
            case FaultKinds.AgentKill:
            {
                var agent = PickAgentMidStep();
                var down = TimeSpan.FromMilliseconds(_random.Next(500, 3000));
                var pid = agent.Process!.Id;
                var from = DateTime.UtcNow;
                await cluster.KillAgentAsync(agent);
                journal.Fault(kind, agent.Id, $"pid {pid}, restarted after {Workload.Seconds(down)}");
                await Task.Delay(down);
                await RestartAgentAsync(agent);
                AddOutage(agent.Id, kind, from);
                break;
            }

            case FaultKinds.ReplicaKill:
            {
                var replica = cluster.Replicas[_random.Next(cluster.Replicas.Count)];
                var down = TimeSpan.FromMilliseconds(_random.Next(500, 2000));
                var agents = cluster.Agents.Where(a => a.Replica == replica).Select(a => (Agent: a, Connects: SoakCluster.ConnectCount(a))).ToList();
                var pid = replica.Process!.Id;
                var from = DateTime.UtcNow;
                await cluster.KillReplicaAsync(replica);
                journal.Fault(kind, replica.Name, $"pid {pid}, restarted on port {replica.Port} after {Workload.Seconds(down)}");
                await Task.Delay(down);
                await cluster.StartReplicaAsync(replica);
                foreach (var (agent, connects) in agents)
                {
                    await WaitReconnectedAsync(agent, connects, $"{replica.Name} was killed and restarted");
                    var outage = AddOutage(agent.Id, kind, from);
                    journal.Info($"{agent.Id} was without a scheduler for {Workload.Seconds(outage.Length)}");
                }

                break;
            }

            case FaultKinds.AgentStop:
            {
                var agent = PickAgentMidStep();
                var pause = SoakCluster.Lease + TimeSpan.FromMilliseconds(_random.Next(1000, 4000));
                var from = DateTime.UtcNow;
                await StopAndContinueAsync(kind, agent.Process!, agent.Id, pause);
                AddOutage(agent.Id, kind, from);
                break;
            }

            case FaultKinds.ReplicaStop:
            {
                var replica = cluster.Replicas[_random.Next(cluster.Replicas.Count)];
                var pause = SoakCluster.Lease + TimeSpan.FromMilliseconds(_random.Next(1000, 4000));
                var from = DateTime.UtcNow;
                await StopAndContinueAsync(kind, replica.Process!, replica.Name, pause);
                foreach (var agent in cluster.Agents.Where(a => a.Replica == replica))
                {
                    AddOutage(agent.Id, kind, from);
                }

                break;
            }

            case FaultKinds.RedisRestart:
            {
                var down = TimeSpan.FromMilliseconds(_random.Next(500, 3000));
                var from = DateTime.UtcNow;
                await cluster.Redis.StopAsync();
                journal.Fault(kind, "redis", $"SIGTERM (shutdown with AOF), started again after {Workload.Seconds(down)}");
                await Task.Delay(down);
                await cluster.Redis.StartAsync();
                AddOutage("", kind, from);
                break;
            }

            case FaultKinds.RedisKill:
            {
                var down = TimeSpan.FromMilliseconds(_random.Next(500, 2000));
                var from = DateTime.UtcNow;
                await cluster.Redis.KillAsync();
                RedisKilledAt = DateTime.UtcNow;
                journal.Fault(kind, "redis", $"SIGKILL (appendfsync everysec: up to the last second may be lost), started again after {Workload.Seconds(down)}");
                await Task.Delay(down);
                await cluster.Redis.StartAsync();
                AddOutage("", kind, from);
                break;
            }

            case FaultKinds.ProxyCut:
            {
                var agent = cluster.Agents.Single(a => a.ViaProxy);
                var connects = SoakCluster.ConnectCount(agent);
                var from = DateTime.UtcNow;
                var cut = cluster.Proxy.CutAll();
                journal.Fault(kind, agent.Id, $"{cut} connection(s) reset");
                if (cut > 0)
                {
                    await WaitReconnectedAsync(agent, connects, "its connection was cut");
                    AddOutage(agent.Id, kind, from);
                }

                break;
            }

            case FaultKinds.ProxyBlackhole:
            {
                var agent = cluster.Agents.Single(a => a.ViaProxy);
                var connects = SoakCluster.ConnectCount(agent);
                var from = DateTime.UtcNow;
                var holed = cluster.Proxy.BlackholeAll();
                journal.Fault(kind, agent.Id, $"{holed} connection(s) blackholed: nothing forwarded, nothing closed");
                if (holed > 0)
                {
                    var clock = Stopwatch.StartNew();
                    if (await WaitReconnectedAsync(agent, connects, "its connection was blackholed (the agent must notice a half-open stream: no heartbeat accepted, or keep-alive)"))
                    {
                        BlackholeNoticed.Add(clock.Elapsed);
                        AddOutage(agent.Id, kind, from);
                        journal.Info($"{agent.Id} noticed the blackhole and connected again after {Workload.Seconds(clock.Elapsed)}");
                    }
                }

                break;
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown fault");
        }
    }

    private async Task StopAndContinueAsync(string kind, ObservedProcess process, string target, TimeSpan pause)
    {
        await process.SignalAsync("STOP");
        journal.Fault(kind, target, $"pid {process.Id} stopped for {Workload.Seconds(pause)} (lease {Workload.Seconds(SoakCluster.Lease)})");
        try
        {
            await Task.Delay(pause);
        }
        finally
        {
            await process.SignalAsync("CONT");
            journal.Info($"{target} pid {process.Id} continued (SIGCONT)");
        }
    }

    private async Task RestartAgentAsync(AgentNode agent)
    {
        try
        {
            await cluster.StartAgentAsync(agent);
        }
        catch (InvalidOperationException ex)
        {
            journal.Violate("agents reconnect", "", "", $"{agent.Id} did not connect within {SoakCluster.StartTimeout.TotalSeconds:0} s of its restart: {FirstLine(ex.Message)}");
        }
    }

    private async Task<bool> WaitReconnectedAsync(AgentNode agent, int connectsBefore, string why)
    {
        try
        {
            await SoakCluster.WaitConnectedAsync(agent, connectsBefore + 1, ReconnectTimeout);
            return true;
        }
        catch (InvalidOperationException ex)
        {
            journal.Violate("agents reconnect", "", "", $"{agent.Id} did not connect again within {ReconnectTimeout.TotalSeconds:0} s after {why}: {FirstLine(ex.Message)}");
            return false;
        }
    }

    /// <summary>
    /// A random agent, unless one is running a long step (batches of a checkpointing step, or a step meant to be
    /// cancelled): then that one, so the fault lands mid-step as often as it can, where it matters.
    /// </summary>
    private AgentNode PickAgentMidStep()
    {
        var agent = cluster.Agents[_random.Next(cluster.Agents.Count)];
        var busy = processes.Scan().Where(p => p.StepId.StartsWith("batches-", StringComparison.Ordinal) || p.StepId.StartsWith("long-", StringComparison.Ordinal))
            .Select(p => p.Agent).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        return busy.Count == 0 || busy.Contains(agent.Id) ? agent : cluster.Agents.First(a => a.Id == busy[0]);
    }

    private Outage AddOutage(string agent, string kind, DateTime from)
    {
        var outage = new Outage(agent, kind, from, DateTime.UtcNow);
        Outages.Add(outage);
        return outage;
    }

    private string Pick((string Kind, int Weight)[] weights)
    {
        var roll = _random.Next(weights.Sum(w => w.Weight));
        foreach (var (kind, weight) in weights)
        {
            if ((roll -= weight) < 0)
            {
                return kind;
            }
        }

        return weights[^1].Kind;
    }

    private static string FirstLine(string text) => text.Split('\n')[0];

    private static async Task Delay(TimeSpan delay, CancellationToken stop)
    {
        try
        {
            await Task.Delay(delay, stop);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
