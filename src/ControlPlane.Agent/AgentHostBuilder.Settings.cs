using System.Globalization;
using ControlPlane.Hosting;
using Setting = ControlPlane.Hosting.DaemonSetting<ControlPlane.Agent.AgentOptions>;

namespace ControlPlane.Agent;

/// <summary>The agent's settings table: what --help lists and README's table mirrors.</summary>
public sealed partial class AgentHostBuilder
{
    private static readonly AgentOptions Defaults = new();

    /// <summary>
    /// Every agent setting: flag --some-option, environment CP_SOME_OPTION, JSON key SomeOption. Deprecated: --id,
    /// CP_AGENT__X variables, --Agent:X flags and the "Agent" section of appsettings.json next to the executable.
    /// </summary>
    public static DaemonSettings<AgentOptions> Settings { get; } = new(
        [
            Setting.List("Scheduler", "URL", "The scheduler's gRPC address: http://HOST:PORT (h2c) or https://HOST:PORT (TLS); several replicas comma-separated or repeated, tried in turn on each reconnect.", Defaults.SchedulerAddress, (o, v) => o.SchedulerAddress = string.Join(',', v), nameof(AgentOptions.SchedulerAddress)),
            Setting.Text("Ca", "PATH", "PEM certificate of the CA that signed the scheduler's certificate (a private CA), trusted as the only root on https:// addresses.", "the system trust store", (o, v) => o.CaFile = v, nameof(AgentOptions.CaFile)),
            Setting.Text("Cert", "PATH", "PEM client certificate for mutual TLS, signed by the scheduler's --client-ca; with Key.", "none", (o, v) => o.CertFile = v, nameof(AgentOptions.CertFile)),
            Setting.Text("Key", "PATH", "PEM private key of Cert.", "none", (o, v) => o.KeyFile = v, nameof(AgentOptions.KeyFile)),
            Setting.Text("AgentId", "ID", "Stable id of this agent across reconnects and restarts, [a-z0-9][a-z0-9._-]{0,62}.", "the host name", (o, v) => o.AgentId = v),
            Setting.Text("Token", "TOKEN", "Bearer token sent to the scheduler (an agent token); prefer CP_TOKEN or TokenFile, as arguments are readable by others.", "none", (o, v) => o.Token = v),
            Setting.Text("TokenFile", "PATH", "File holding the bearer token, read on every connect.", "none", (o, v) => o.TokenFile = v),
            Setting.Text("Namespace", "NS", "Namespace this agent serves, [a-z0-9][a-z0-9._-]{0,62}: it gets steps of that namespace's runs only; its token must belong to it (or to every one).", "the token's namespace, else the scheduler's default", (o, v) => o.Namespace = v),
            Setting.Number("Slots", "Steps run at once.", "the processor count", (o, v) => o.Slots = v),
            Setting.List("Queues", "a,b", "Queues to take steps from.", string.Join(',', Defaults.Queues), (o, v) => o.Queues = [.. v]),
            Setting.Map("Labels", "Labels announced to the scheduler.", "none", (o, v) => o.Labels = new Dictionary<string, string>(v, StringComparer.Ordinal)),
            Setting.Text("WorkRoot", "DIR", "Directory (0700, this user's) under which each attempt gets its own private work directory.", "$STATE_DIRECTORY/<agent id> under systemd, else ~/.local/state/controlplane/agent/<agent id>", (o, v) => o.WorkRoot = v),
            Setting.List("PassEnv", "NAME,...", "Agent environment variables shell steps also get besides PATH, HOME, LANG, TZ; a trailing * matches a prefix (AWS_*). CP_ variables never pass.", "none", (o, v) => o.PassEnv = [.. v]),
            Setting.Duration("HeartbeatInterval", "Heartbeat interval until the scheduler's Welcome sets one.", DaemonDuration.Format(Defaults.HeartbeatInterval), (o, v) => o.HeartbeatInterval = v),
            Setting.Duration("ShutdownGracePeriod", "On SIGTERM, how long running steps may finish before they are stopped.", DaemonDuration.Format(Defaults.ShutdownGracePeriod), (o, v) => o.ShutdownGracePeriod = v),
            Setting.Duration("KillGracePeriod", "Time between SIGTERM and SIGKILL when a step's process tree is stopped.", DaemonDuration.Format(Defaults.KillGracePeriod), (o, v) => o.KillGracePeriod = v),
            Setting.Duration("ConnectTimeout", "How long to wait for the scheduler's Welcome before reconnecting.", DaemonDuration.Format(Defaults.ConnectTimeout), (o, v) => o.ConnectTimeout = v),
            Setting.Duration("MaxReconnectDelay", "Longest wait between reconnect attempts (exponential backoff with jitter).", DaemonDuration.Format(Defaults.MaxReconnectDelay), (o, v) => o.MaxReconnectDelay = v),
            Setting.Number("MaxBufferedReports", "Log lines kept while disconnected (at most 1 MiB per attempt); beyond it they are dropped and counted. Progress and checkpoints keep the latest, results are never dropped.", Defaults.MaxBufferedReports.ToString(CultureInfo.InvariantCulture), (o, v) => o.MaxBufferedReports = v),
            Setting.Text("MetricsListen", "HOST:PORT", "Serve Prometheus metrics at http://HOST:PORT/metrics (plain HTTP, no authentication: keep it on loopback or a private interface; 0.0.0.0 = every interface).", "off", (o, v) => o.MetricsListen = v),
            Setting.Boolean("KeepWorkDirectories", "Keep each attempt's work directory after it ends, for debugging.", Defaults.KeepWorkDirectories ? "true" : "false", (o, v) => o.KeepWorkDirectories = v),
        ],
        static options =>
        {
            // One line at start-up: the first problem, reported against the setting it came from.
            var problems = options.FindProblems();
            if (problems.Count > 0)
            {
                throw new ArgumentException(problems[0].Message, problems[0].Property);
            }
        },
        new DeprecatedNames
        {
            AppSettingsSection = "Agent",
            EnvironmentPrefix = "CP_AGENT__",
            FlagPrefix = "--Agent:",
            Flags = new Dictionary<string, string>(StringComparer.Ordinal) { ["--id"] = "AgentId" },
        })
    {
        // --token-file beats a CP_TOKEN left in the environment for cpctl; both from one source are refused.
        Alternatives = [["Token", "TokenFile"]],
    };
}
