using System.Reflection;
using ControlPlane.Client;
using ControlPlane.Tests.Support;
using ControlPlane.V1;

namespace ControlPlane.FunctionalTests;

/// <summary>
/// A scheduler process and agent processes over a real Redis, with a client; everything is killed on dispose.
/// Each cluster has its own store namespace and a shared directory its steps can write to.
/// </summary>
public sealed class FunctionalCluster : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static string SchedulerPath => HostPath("SchedulerHost");

    internal static string AgentPath => HostPath("AgentHost");

    private readonly string _redis;
    private readonly string _ns = "ft-" + Guid.NewGuid().ToString("N")[..12];
    private readonly List<ObservedProcess> _processes = [];
    private readonly TimeSpan _lease;
    private readonly string? _adminTokenFile;
    private ControlPlaneClient? _client;
    private TestCertificates? _pki;
    private string? _secretsKeyFile;

    private FunctionalCluster(string redis, TimeSpan lease, string? adminToken = null)
    {
        _redis = redis;
        _lease = lease;
        SharedDir = Directory.CreateTempSubdirectory("cp-ft-").FullName;
        if (adminToken is not null)
        {
            AdminToken = adminToken;
            _adminTokenFile = WriteSecret("admin.token", adminToken);
        }
    }

    /// <summary>The scheduler's admin token (authentication on), or null (authentication off).</summary>
    public string? AdminToken { get; }

    /// <summary>The token <see cref="Client"/> sends; the admin token unless the test sets another. Set it before the first use of Client.</summary>
    public string? ClientToken { get; set; }

    /// <summary>A directory the test and every step can read and write.</summary>
    public string SharedDir { get; }

    public ObservedProcess Scheduler { get; private set; } = null!;

    public int Port { get; private set; }

    public string Address => $"{(_pki is null ? "http" : "https")}://127.0.0.1:{Port}";

    /// <summary>The private CA of a cluster started with <see cref="StartTlsAsync"/>: the scheduler's certificate and the agents' client certificates.</summary>
    public TestCertificates? Pki => _pki;

    public ControlPlaneClient Client => _client ??= new ControlPlaneClient(new ControlPlaneClientOptions { Address = Address, CaFile = _pki?.CaFile, BearerToken = ClientToken ?? AdminToken });

    public Dictionary<string, ObservedProcess> Agents { get; } = new(StringComparer.Ordinal);

    public static Task<FunctionalCluster> StartAsync(RedisServerFixture redis, TimeSpan? lease = null) =>
        StartAsync(redis.Configuration, lease);

    /// <summary>A cluster whose scheduler authenticates every call: started with --admin-token-file holding <paramref name="adminToken"/>.</summary>
    public static async Task<FunctionalCluster> StartAuthenticatedAsync(RedisServerFixture redis, string adminToken)
    {
        var cluster = new FunctionalCluster(redis.Configuration, TimeSpan.FromSeconds(10), adminToken);
        await cluster.StartSchedulerAsync(port: 0);
        return cluster;
    }

    /// <summary>A cluster whose scheduler seals secrets with <paramref name="key"/> (--secrets-key-file, base64), authenticated with <paramref name="adminToken"/>.</summary>
    public static async Task<FunctionalCluster> StartWithSecretsKeyAsync(RedisServerFixture redis, string adminToken, byte[] key)
    {
        var cluster = new FunctionalCluster(redis.Configuration, TimeSpan.FromSeconds(10), adminToken);
        cluster._secretsKeyFile = cluster.WriteSecret("secrets.key", Convert.ToBase64String(key));
        await cluster.StartSchedulerAsync(port: 0);
        return cluster;
    }

    /// <summary>The store namespace of this cluster's scheduler; its Redis keys are cp:{Namespace}:...</summary>
    public string Namespace => _ns;

    /// <summary>Writes <paramref name="secret"/> to a file only this user may read; returns its path.</summary>
    public string WriteSecret(string name, string secret)
    {
        var path = Path.Combine(SharedDir, name);
        File.WriteAllText(path, secret + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return path;
    }

    /// <summary>Runs the real cpctl against this cluster's scheduler; returns its exit code, stdout and stderr.</summary>
    public async Task<(int ExitCode, string Out, string Error)> CpctlAsync(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        await using var cpctl = ObservedProcess.Start("cpctl " + string.Join(' ', args), HostPath("Cpctl"), ["--scheduler", Address, .. args], environment: environment);
        var exit = await cpctl.WaitForExitAsync(Timeout) ?? throw new TimeoutException($"cpctl {string.Join(' ', args)} did not exit within {Timeout}:\n{cpctl.Output}");
        return (exit, cpctl.StandardOutput, cpctl.StandardError);
    }

    /// <summary>A cluster on the Redis at <paramref name="redisConfiguration"/> ("127.0.0.1:port"), e.g. one the test restarts.</summary>
    public static async Task<FunctionalCluster> StartAsync(string redisConfiguration, TimeSpan? lease = null, TimeSpan? heartbeat = null)
    {
        var cluster = new FunctionalCluster(redisConfiguration, lease ?? TimeSpan.FromSeconds(10)) { _heartbeat = heartbeat };
        await cluster.StartSchedulerAsync(port: 0);
        return cluster;
    }

    /// <summary>
    /// A cluster whose scheduler speaks TLS with a certificate of a private CA and asks for client certificates of it
    /// (--client-ca); with <paramref name="adminToken"/>, it also authenticates every call (--admin-token-file).
    /// </summary>
    public static async Task<FunctionalCluster> StartTlsAsync(RedisServerFixture redis, string? adminToken = null)
    {
        var cluster = new FunctionalCluster(redis.Configuration, TimeSpan.FromSeconds(10), adminToken);
        cluster._pki = TestCertificates.Create(cluster.SharedDir);
        await cluster.StartSchedulerAsync(port: 0);
        return cluster;
    }

    /// <summary>Starts the scheduler (again, on the same port once one was bound) and waits until it listens.</summary>
    public async Task StartSchedulerAsync(int port)
    {
        (Scheduler, Port) = await LaunchSchedulerAsync(port);
    }

    /// <summary>A second scheduler replica on the same Redis and namespace; the cluster's client keeps talking to the first.</summary>
    public Task<(ObservedProcess Process, int Port)> StartReplicaAsync() => LaunchSchedulerAsync(port: 0);

    /// <summary>From now on <see cref="Scheduler"/>, <see cref="Address"/> and <see cref="Client"/> are this replica's.</summary>
    public void UseReplica(ObservedProcess replica, int port)
    {
        _client?.Dispose();
        _client = null;
        Scheduler = replica;
        Port = port;
    }

    // The scheduler's heartbeat interval when a test sets one (default: 1 s, at most a third of the lease).
    private TimeSpan? _heartbeat;

    private async Task<(ObservedProcess Process, int Port)> LaunchSchedulerAsync(int port)
    {
        var heartbeat = _heartbeat ?? TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(1).Ticks, _lease.Ticks / 3));
        var scheduler = ObservedProcess.Start("scheduler", SchedulerPath,
        [
            "--listen", $"127.0.0.1:{port}",
            "--http-listen", "127.0.0.1:0",
            "--redis", _redis,
            "--namespace", _ns,
            "--lease-duration", $"{_lease.TotalMilliseconds}ms",
            "--heartbeat-interval", $"{heartbeat.TotalMilliseconds}ms",
            "--maintenance-interval", "250ms",
            .. _pki is null ? [] : new[] { "--tls-cert", _pki.ServerCertFile, "--tls-key", _pki.ServerKeyFile, "--client-ca", _pki.CaFile },
            .. _adminTokenFile is null ? Array.Empty<string>() : ["--admin-token-file", _adminTokenFile],
            .. _secretsKeyFile is null ? Array.Empty<string>() : ["--secrets-key-file", _secretsKeyFile],
        ]);
        _processes.Add(scheduler);
        return (scheduler, new Uri(await scheduler.WaitForListeningAsync(Timeout)).Port);
    }

    /// <summary>The scheduler's HTTP listener (dashboard, JSON API, /metrics), from the line it logs when it listens.</summary>
    public async Task<Uri> HttpAddressAsync()
    {
        var line = await Scheduler.WaitForLineAsync(l => l.Contains("/metrics on ", StringComparison.Ordinal), Timeout, "its HTTP listener line");
        return new Uri(line[(line.LastIndexOf(" on ", StringComparison.Ordinal) + 4)..].Trim());
    }

    /// <summary>kill -9 the scheduler, then start a new one on the same port.</summary>
    public async Task CrashAndRestartSchedulerAsync(Func<Task>? whileDown = null)
    {
        await Scheduler.SignalAsync("KILL");
        await Scheduler.Exited.WaitAsync(Timeout);
        if (whileDown is not null)
        {
            await whileDown();
        }

        await StartSchedulerAsync(Port);
    }

    /// <summary>SIGTERM the scheduler, check it shut down cleanly (exit 0), then start a new one on the same port.</summary>
    public async Task StopAndRestartSchedulerAsync()
    {
        var code = await Scheduler.StopAsync(Timeout);
        if (code != 0)
        {
            var outcome = code is null ? $"did not exit within {Timeout} of SIGTERM (killed)" : $"exited with {code} on SIGTERM";
            throw new Xunit.Sdk.XunitException($"the scheduler {outcome}. Output:\n{Scheduler.Output}");
        }

        await Scheduler.WaitForLineAsync(l => l == "scheduler stopped", Timeout, "its stopped line");
        await StartSchedulerAsync(Port);
    }

    /// <summary>Starts an agent of this cluster's scheduler, or of <paramref name="schedulers"/> (one or several addresses).</summary>
    public async Task<ObservedProcess> StartAgentAsync(string id, int slots, string? schedulers = null, string? tokenFile = null, IReadOnlyList<string>? arguments = null)
    {
        var agent = LaunchAgent(id, slots, schedulers, tokenFile, arguments);
        await WaitConnectedAsync(agent, 1);
        return agent;
    }

    /// <summary>Starts an agent process without waiting for it to connect (e.g. one the scheduler should refuse).</summary>
    public ObservedProcess LaunchAgent(string id, int slots, string? schedulers = null, string? tokenFile = null, IReadOnlyList<string>? arguments = null)
    {
        var workRoot = Path.Combine(SharedDir, "work-" + id);
        var agent = ObservedProcess.Start("agent " + id, AgentPath,
            ["--scheduler", schedulers ?? Address, "--agent-id", id, "--slots", slots.ToString(System.Globalization.CultureInfo.InvariantCulture), "--work-root", workRoot, .. TlsArguments(id),
                .. tokenFile is null ? Array.Empty<string>() : ["--token-file", tokenFile], .. arguments ?? []],
            environment: new Dictionary<string, string>
            {
                ["CP_MAX_RECONNECT_DELAY"] = "1s",
                ["CP_KILL_GRACE_PERIOD"] = "2s",
            });
        _processes.Add(agent);
        Agents[id] = agent;
        return agent;
    }

    /// <summary>An agent's --ca, and --cert and --key of a client certificate for it, when the cluster speaks TLS.</summary>
    private string[] TlsArguments(string agentId)
    {
        if (_pki is null)
        {
            return [];
        }

        var (cert, key) = _pki.IssueClient(agentId);
        return ["--ca", _pki.CaFile, "--cert", cert, "--key", key];
    }

    /// <summary>Kills <paramref name="process"/> with the cluster.</summary>
    public void Own(ObservedProcess process) => _processes.Add(process);

    /// <summary>Waits until the agent has logged its <paramref name="times"/>-th successful connect.</summary>
    public static async Task WaitConnectedAsync(ObservedProcess agent, int times)
    {
        var seen = 0;
        await agent.WaitForLineAsync(l => l.Contains("Connected to ", StringComparison.Ordinal) && ++seen >= times, Timeout, $"connect #{times}");
    }

    public string Path2(string name) => Path.Combine(SharedDir, name);

    /// <summary>
    /// Follows the run's events until <paramref name="condition"/> holds; fails on timeout or if the run ends first.
    /// Through <paramref name="client"/> when given (e.g. one with a token of another namespace), else <see cref="Client"/>.
    /// </summary>
    public async Task<Run> WaitForRunAsync(string runId, Func<Run, bool> condition, string what, ControlPlaneClient? client = null)
    {
        client ??= Client;
        using var cts = new CancellationTokenSource(Timeout);
        var run = await client.GetRunAsync(runId, cts.Token);
        try
        {
            while (!condition(run))
            {
                if (ControlPlaneClient.IsTerminal(run.State))
                {
                    throw new Xunit.Sdk.XunitException($"run {runId} ended {run.State} before {what}: {Describe(run)}");
                }

                await foreach (var e in client.WatchRunAsync(runId, run.LastEventSeq, cts.Token))
                {
                    if (e.EventCase == RunEvent.EventOneofCase.StepLogged)
                    {
                        continue;
                    }

                    break;
                }

                run = await client.GetRunAsync(runId, cts.Token);
            }
        }
        catch (Exception ex) when (cts.IsCancellationRequested && ex is OperationCanceledException or Grpc.Core.RpcException)
        {
            var agents = string.Join("\n", Agents.Values.Select(a => $"--- {a.Description}:\n{a.Output}"));
            throw new Xunit.Sdk.XunitException($"timed out after {Timeout} waiting for {what}: {Describe(run)}\n{agents}");
        }

        return run;
    }

    public Task<Run> WaitForStateAsync(string runId, RunState state, ControlPlaneClient? client = null) =>
        WaitForRunAsync(runId, r => r.State == state, $"run state {state}", client);

    /// <summary>Completes once <paramref name="path"/> exists (a FileSystemWatcher event, not a poll).</summary>
    public static async Task WaitForFileAsync(string path, string what)
    {
        var found = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var watcher = new FileSystemWatcher(Path.GetDirectoryName(path)!, Path.GetFileName(path));
        watcher.Created += (_, _) => found.TrySetResult();
        watcher.Renamed += (_, _) => found.TrySetResult();
        watcher.EnableRaisingEvents = true;
        if (File.Exists(path))
        {
            return;
        }

        try
        {
            await found.Task.WaitAsync(Timeout);
        }
        catch (TimeoutException)
        {
            throw new Xunit.Sdk.XunitException($"{what}: {path} did not appear within {Timeout}");
        }
    }

    /// <summary>Every slot counter of the store (agents, runs, queues, keys) in use, as "kind/name=used".</summary>
    public async Task<IReadOnlyList<string>> UsedSlotsAsync()
    {
        var stats = await Client.GetStatsAsync();
        return stats.Slots.Where(s => s.Used != 0).Select(s => $"{s.Kind}/{s.Name}={s.Used}").ToList();
    }

    public static string Describe(Run run) =>
        $"{run.State} [{string.Join(", ", run.Steps.Select(s => $"{s.Id}:{s.State}#{s.Attempt}@{s.AgentId}{(s.Error.Length > 0 ? " '" + s.Error + "'" : "")}{(s.BlockedReason.Length > 0 ? " (" + s.BlockedReason + ")" : "")}"))}]";

    public static Step StepOf(Run run, string id) => run.Steps.Single(s => s.Id == id);

    public static int Succeeded(Step step) => step.History.Count(h => h.ToState == "STEP_STATE_SUCCEEDED");

    public async ValueTask DisposeAsync()
    {
        _client?.Dispose();
        foreach (var process in _processes)
        {
            await process.DisposeAsync();
        }

        _pki?.Dispose();
        await ForgetNamespacesAsync();

        try
        {
            Directory.Delete(SharedDir, recursive: true);
        }
        catch (IOException)
        {
            // A step process of a killed agent may still be writing; the temp dir is cleaned by the OS eventually.
        }
    }

    /// <summary>
    /// Empties the shared Redis's record of namespaces once this cluster's processes are gone (the tests run one at a
    /// time): every scheduler serves every recorded namespace, and the next test's should not keep reaping this one's.
    /// </summary>
    private async Task ForgetNamespacesAsync()
    {
        try
        {
            using var connection = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(_redis + ",connectTimeout=2000,abortConnect=true");
            await connection.GetDatabase().KeyDeleteAsync("cp:{_namespaces}:all");
        }
        catch (StackExchange.Redis.RedisException)
        {
            // A test that stopped Redis for good leaves nothing to forget.
        }
    }

    private static string HostPath(string name)
    {
        var path = typeof(FunctionalCluster).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == name).Value!;
        return File.Exists(path) ? path : throw new InvalidOperationException($"{path} does not exist; build the solution first (dotnet build ControlPlane.sln).");
    }
}
