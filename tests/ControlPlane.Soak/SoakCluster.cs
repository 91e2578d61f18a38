using System.Globalization;
using System.Reflection;
using ControlPlane.Tests.Support;

namespace ControlPlane.Soak;

/// <summary>A scheduler replica: its fixed port (a restart binds it again, so its agents come back) and its current process.</summary>
internal sealed class Replica(string name, LogFile log)
{
    public string Name { get; } = name;

    public LogFile Log { get; } = log;

    public int Port { get; set; }

    public string Address => $"http://127.0.0.1:{Port}";

    public ObservedProcess? Process { get; set; }

    /// <summary>How many times a process was started for it.</summary>
    public int Starts { get; set; }
}

/// <summary>An agent: the address it dials (a replica, or the proxy in front of one) and its current process.</summary>
internal sealed class AgentNode(string id, Replica replica, bool viaProxy, string workRoot, LogFile log)
{
    public string Id { get; } = id;

    public Replica Replica { get; } = replica;

    public bool ViaProxy { get; } = viaProxy;

    public string WorkRoot { get; } = workRoot;

    public LogFile Log { get; } = log;

    public ObservedProcess? Process { get; set; }

    public int Starts { get; set; }

    public string Target => ViaProxy ? $"{Replica.Name} through the proxy" : Replica.Name;
}

/// <summary>
/// The processes under test: a redis-server with AOF (fsync every second, as deploy/redis.conf), two scheduler replicas
/// on it, three agents, one of them through a <see cref="TcpCutProxy"/>. Every process's output goes to its own file
/// under logs/ (one file per process name across restarts), and each can be killed, stopped and started again.
/// </summary>
internal sealed class SoakCluster : IAsyncDisposable
{
    /// <summary>Set in the agents' environment and passed to every step process (--pass-env), so the soak can find them.</summary>
    public const string SoakIdVariable = "SOAK_ID";

    /// <summary>Where steps write the ledger and their once-only markers.</summary>
    public const string SoakDirVariable = "SOAK_DIR";

    public const int AgentSlots = 4;

    /// <summary>
    /// Short, so a SIGSTOP beyond the lease and a kill resolve within seconds; long enough that a clean Redis restart
    /// (up to 3 s down, then reconnects) ends before any lease it interrupted: while Redis is down no lease can be
    /// renewed, so an outage longer than the lease less a heartbeat and a reconnect does cost attempts.
    /// </summary>
    public static readonly TimeSpan Lease = TimeSpan.FromSeconds(8);

    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(1);

    public static readonly TimeSpan KillGrace = TimeSpan.FromSeconds(2);

    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(20);

    private readonly Journal _journal;
    private readonly List<LogFile> _logs = [];

    private SoakCluster(string dir, string soakId, Journal journal)
    {
        Dir = dir;
        SoakId = soakId;
        _journal = journal;
        LogsDir = Path.Combine(dir, "logs");
        Directory.CreateDirectory(LogsDir);
        Directory.CreateDirectory(Path.Combine(dir, "flaky"));
        File.WriteAllText(LedgerPath, "");
        Redis = new RedisServer(appendOnly: true, fsyncEverySecond: true, echo: NewLog("redis"));
        Replicas = [new Replica("replica-a", NewLog("replica-a")), new Replica("replica-b", NewLog("replica-b"))];
    }

    public string Dir { get; }

    public string LogsDir { get; }

    public string SoakId { get; }

    /// <summary>One line per step process that ran to its end: "run step attempt pid epoch-seconds work-dir".</summary>
    public string LedgerPath => Path.Combine(Dir, "ledger");

    public RedisServer Redis { get; }

    public IReadOnlyList<Replica> Replicas { get; }

    public IReadOnlyList<AgentNode> Agents { get; private set; } = [];

    public TcpCutProxy Proxy { get; private set; } = null!;

    private static string SchedulerPath => HostPath("SchedulerHost");

    private static string AgentPath => HostPath("AgentHost");

    public static async Task<SoakCluster> StartAsync(string dir, string soakId, Journal journal)
    {
        var cluster = new SoakCluster(dir, soakId, journal);
        await cluster.Redis.StartAsync();
        journal.Info($"redis-server on {cluster.Redis.Configuration}, appendonly yes, appendfsync everysec, dir {cluster.Redis.DataDirectory}");
        foreach (var replica in cluster.Replicas)
        {
            await cluster.StartReplicaAsync(replica);
        }

        cluster.Proxy = new TcpCutProxy(cluster.Replicas[0].Port);
        journal.Info($"proxy on port {cluster.Proxy.Port} in front of {cluster.Replicas[0].Name}");
        cluster.Agents =
        [
            new AgentNode("agent-1", cluster.Replicas[0], false, Path.Combine(dir, "work", "agent-1"), cluster.NewLog("agent-1")),
            new AgentNode("agent-2", cluster.Replicas[1], false, Path.Combine(dir, "work", "agent-2"), cluster.NewLog("agent-2")),
            new AgentNode("agent-3", cluster.Replicas[0], true, Path.Combine(dir, "work", "agent-3"), cluster.NewLog("agent-3")),
        ];
        foreach (var agent in cluster.Agents)
        {
            await cluster.StartAgentAsync(agent);
        }

        return cluster;
    }

    /// <summary>Starts the replica (on its port once it has one) and waits until it listens.</summary>
    public async Task StartReplicaAsync(Replica replica)
    {
        replica.Starts++;
        replica.Log.WriteLine($"=== start #{replica.Starts} of {replica.Name}");
        var process = ObservedProcess.Start(replica.Name, SchedulerPath,
        [
            "--listen", $"127.0.0.1:{replica.Port}",
            "--http-listen", "127.0.0.1:0",
            "--redis", Redis.Configuration,
            "--scheduler-id", replica.Name,
            "--lease-duration", Ms(Lease),
            "--heartbeat-interval", Ms(HeartbeatInterval),
            "--maintenance-interval", "250ms",
            "--shutdown-timeout", "5s",
        ], echo: replica.Log);
        replica.Process = process;
        var address = await process.WaitForListeningAsync(StartTimeout);
        replica.Port = new Uri(address).Port;
        _journal.Info($"{replica.Name} pid {process.Id} listening on {address}");
    }

    /// <summary>kill -9 of the replica's process alone; waits until it is gone.</summary>
    public async Task KillReplicaAsync(Replica replica)
    {
        var process = replica.Process ?? throw new InvalidOperationException($"{replica.Name} is not running");
        replica.Process = null;
        await KillAsync(process);
        replica.Log.WriteLine($"=== {replica.Name} pid {process.Id} killed (SIGKILL), exit code {await process.Exited}");
        _journal.Info($"{replica.Name} pid {process.Id} is gone (SIGKILL)");
        await process.DisposeAsync();
    }

    /// <summary>Starts the agent and waits until it has connected.</summary>
    public async Task StartAgentAsync(AgentNode agent)
    {
        agent.Starts++;
        agent.Log.WriteLine($"=== start #{agent.Starts} of {agent.Id}");
        var address = agent.ViaProxy ? $"http://127.0.0.1:{Proxy.Port}" : agent.Replica.Address;
        var process = ObservedProcess.Start(agent.Id, AgentPath,
        [
            "--scheduler", address,
            "--agent-id", agent.Id,
            "--slots", AgentSlots.ToString(CultureInfo.InvariantCulture),
            "--queues", "default,batch",
            "--work-root", agent.WorkRoot,
            "--kill-grace-period", Ms(KillGrace),
            "--max-reconnect-delay", "1s",
            "--connect-timeout", "5s",
            "--shutdown-grace-period", "10s",
            "--pass-env", $"{SoakIdVariable},{SoakDirVariable}",
        ], environment: new Dictionary<string, string>
        {
            [SoakIdVariable] = SoakId,
            [SoakDirVariable] = Dir,
        }, echo: agent.Log);
        agent.Process = process;
        await WaitConnectedAsync(agent, 1, StartTimeout);
        _journal.Info($"{agent.Id} pid {process.Id} connected to {agent.Target} ({address})");
    }

    /// <summary>kill -9 of the agent's process alone (its step processes are left as a crash leaves them); waits until it is gone.</summary>
    public async Task KillAgentAsync(AgentNode agent)
    {
        var process = agent.Process ?? throw new InvalidOperationException($"{agent.Id} is not running");
        agent.Process = null;
        await KillAsync(process);
        agent.Log.WriteLine($"=== {agent.Id} pid {process.Id} killed (SIGKILL), exit code {await process.Exited}");
        _journal.Info($"{agent.Id} pid {process.Id} is gone (SIGKILL); its step processes are left running");
        await process.DisposeAsync();
    }

    /// <summary>How many times the agent's current process has logged a successful connect.</summary>
    public static int ConnectCount(AgentNode agent) =>
        agent.Process?.Output.Split('\n').Count(IsConnectLine) ?? 0;

    /// <summary>Waits until the agent's current process has logged its <paramref name="times"/>-th successful connect.</summary>
    public static async Task WaitConnectedAsync(AgentNode agent, int times, TimeSpan timeout)
    {
        var process = agent.Process ?? throw new InvalidOperationException($"{agent.Id} is not running");
        var seen = 0;
        await process.WaitForLineAsync(l => IsConnectLine(l) && ++seen >= times, timeout, $"connect #{times}");
    }

    /// <summary>Stops everything in order: agents drain first (SIGTERM), then the replicas, then Redis.</summary>
    public async Task StopAsync()
    {
        foreach (var agent in Agents.Where(a => a.Process is not null))
        {
            var code = await agent.Process!.StopAsync(StopGrace);
            _journal.Info($"{agent.Id} stopped on SIGTERM: {(code is null ? "killed after the grace period" : $"exit code {code}")}");
        }

        foreach (var replica in Replicas.Where(r => r.Process is not null))
        {
            var code = await replica.Process!.StopAsync(StopGrace);
            _journal.Info($"{replica.Name} stopped on SIGTERM: {(code is null ? "killed after the grace period" : $"exit code {code}")}");
        }

        await Redis.StopAsync();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in Agents.Select(a => a.Process).Concat(Replicas.Select(r => r.Process)).OfType<ObservedProcess>())
        {
            await process.DisposeAsync();
        }

        if (Proxy is not null)
        {
            await Proxy.DisposeAsync();
        }

        await Redis.DisposeAsync();
        foreach (var log in _logs)
        {
            log.Dispose();
        }
    }

    private static bool IsConnectLine(string line) => line.Contains("Connected to ", StringComparison.Ordinal);

    private static async Task KillAsync(ObservedProcess process)
    {
        await process.SignalAsync("KILL");
        await process.Exited.WaitAsync(TimeSpan.FromSeconds(30));
    }

    private static string Ms(TimeSpan span) => $"{(long)span.TotalMilliseconds}ms";

    private LogFile NewLog(string name)
    {
        var log = new LogFile(Path.Combine(LogsDir, name + ".log"));
        _logs.Add(log);
        return log;
    }

    private static string HostPath(string name)
    {
        var path = typeof(SoakCluster).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == name).Value!;
        return File.Exists(path) ? path : throw new InvalidOperationException($"{path} does not exist; build it first: dotnet build tests/ControlPlane.Soak -c Release");
    }
}
