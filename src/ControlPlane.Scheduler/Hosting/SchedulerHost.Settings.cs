using System.Globalization;
using ControlPlane.Hosting;
using Setting = ControlPlane.Hosting.DaemonSetting<ControlPlane.Scheduler.SchedulerOptions>;

namespace ControlPlane.Scheduler.Hosting;

/// <summary>The scheduler's settings table: what --help lists and README's table mirrors.</summary>
public static partial class SchedulerHost
{
    private static readonly SchedulerOptions Defaults = new();

    /// <summary>
    /// Every scheduler setting: flag --some-option, environment CP_SOME_OPTION, JSON key SomeOption. Deprecated: the
    /// "Scheduler" section of appsettings.json next to the executable.
    /// </summary>
    public static DaemonSettings<SchedulerOptions> Settings { get; } = new(
        [
            Setting.Text("Listen", "HOST:PORT", "Address the gRPC server listens on; port 0 picks a free port.", Defaults.Listen, (o, v) => o.Listen = v),
            Setting.Text("HttpListen", "HOST:PORT", "Address of the HTTP listener: dashboard, JSON API, /metrics, /healthz, /readyz (same TLS and tokens); port 0 picks a free port, off serves none.", "Listen's address, port + 10 (127.0.0.1:7080)", (o, v) => o.HttpListen = v),
            Setting.Text("Redis", "HOST:PORT", "Redis holding the run state, for several replicas and restarts.", "none: the in-process embedded store", (o, v) => o.Redis = v),
            Setting.Text("Namespace", "NAME", "The namespace of calls that name none (no cp-namespace header, a token of every namespace, or authentication off); the scheduler serves every namespace, each under Redis keys cp:{NAME}:.", Defaults.Namespace, (o, v) => o.Namespace = v),
            Setting.Boolean("Migrate", "Upgrade Redis data of an older format in place at start (stop the older replicas first); without it such data stops the start.", Defaults.Migrate ? "true" : "false", (o, v) => o.Migrate = v),
            Setting.Text("SchedulerId", "ID", "This replica's id in Welcome and in logs.", "HOST-PID", (o, v) => o.SchedulerId = v),
            Setting.Text("TlsCert", "PATH", "PEM certificate (chain); with TlsKey the listener speaks TLS instead of h2c.", "none (h2c)", (o, v) => o.TlsCert = v),
            Setting.Text("TlsKey", "PATH", "PEM private key of TlsCert.", "none", (o, v) => o.TlsKey = v),
            Setting.Text("ClientCa", "PATH", "PEM CA certificate(s): the TLS listener asks for client certificates and accepts only those chaining to it (a client without one may still connect).", "none", (o, v) => o.ClientCa = v),
            Setting.Text("AdminTokenFile", "PATH", "File holding the first admin token; with it (or AdminToken) every call but health needs a bearer token (see README: Authentication).", "none: authentication off (loopback only)", (o, v) => o.AdminTokenFile = v),
            Setting.Text("AdminToken", "TOKEN", "The first admin token itself; prefer CP_ADMIN_TOKEN or AdminTokenFile, as arguments are readable by others.", "none", (o, v) => o.AdminToken = v),
            Setting.Text("SecretsKeyFile", "PATH", "File holding the 32-byte key (raw, or base64: openssl rand -base64 32) that encrypts stored secrets (see README: Secrets).", "none: an in-memory key with the embedded store; secrets refused with Redis", (o, v) => o.SecretsKeyFile = v),
            Setting.Boolean("Insecure", "Allow a non-loopback Listen without TLS and authentication (warns at start and in health).", Defaults.Insecure ? "true" : "false", (o, v) => o.Insecure = v),
            Setting.Boolean("Reflection", "Serve grpc.reflection, so grpcurl and similar tools can list and call the services.", Defaults.Reflection ? "true" : "false", (o, v) => o.Reflection = v),
            Setting.Number("MaxReceiveMessageSize", "Largest message accepted, in bytes.", string.Create(CultureInfo.InvariantCulture, $"{Defaults.MaxReceiveMessageSize} ({Defaults.MaxReceiveMessageSize >> 20} MiB)"), (o, v) => o.MaxReceiveMessageSize = v),
            Setting.Number("MaxSubmitSize", "Largest SubmitRun request accepted, in bytes; other calls but the agent stream take at most 64 KiB.", string.Create(CultureInfo.InvariantCulture, $"{Defaults.MaxSubmitSize} ({Defaults.MaxSubmitSize >> 20} MiB)"), (o, v) => o.MaxSubmitSize = v),
            Setting.Duration("LeaseDuration", "How long an attempt stays owned without a heartbeat before it is requeued.", DaemonDuration.Format(Defaults.LeaseDuration), (o, v) => o.LeaseDuration = v),
            Setting.Duration("HeartbeatInterval", "How often agents heartbeat; at most half the lease.", DaemonDuration.Format(Defaults.HeartbeatInterval), (o, v) => o.HeartbeatInterval = v),
            Setting.Duration("MaintenanceInterval", "How often the reaper runs (expired leases, timeouts, retries due).", DaemonDuration.Format(Defaults.MaintenanceInterval), (o, v) => o.MaintenanceInterval = v),
            Setting.Number("MaintenanceBatch", "Most leases, timeouts and retries one reaper pass handles of each.", Defaults.MaintenanceBatch.ToString(CultureInfo.InvariantCulture), (o, v) => o.MaintenanceBatch = v),
            Setting.Duration("DefaultRetention", "How long a finished run whose spec sets no retention is kept; 0s keeps it forever.", DaemonDuration.Format(Defaults.DefaultRetention), (o, v) => o.DefaultRetention = v),
            Setting.Duration("AgentRetention", "How long a disconnected agent is listed after its last contact before maintenance removes it.", DaemonDuration.Format(Defaults.AgentRetention), (o, v) => o.AgentRetention = v),
            Setting.Number("ClaimBatch", "Most steps one claim gives an agent.", Defaults.ClaimBatch.ToString(CultureInfo.InvariantCulture), (o, v) => o.ClaimBatch = v),
            Setting.Number("ReportBatch", "Most agent reports committed in one store call.", Defaults.ReportBatch.ToString(CultureInfo.InvariantCulture), (o, v) => o.ReportBatch = v),
            Setting.Number("WatchBatch", "Most events one WatchRun store read returns.", Defaults.WatchBatch.ToString(CultureInfo.InvariantCulture), (o, v) => o.WatchBatch = v),
            Setting.Duration("WatchRecheckInterval", "How often a watcher re-reads the event log without a wake-up.", DaemonDuration.Format(Defaults.WatchRecheckInterval), (o, v) => o.WatchRecheckInterval = v),
            Setting.Duration("ShutdownTimeout", "Longest graceful shutdown (streams ended, reports committed).", DaemonDuration.Format(Defaults.ShutdownTimeout), (o, v) => o.ShutdownTimeout = v),
        ],
        static options => options.Validate(),
        new DeprecatedNames { AppSettingsSection = "Scheduler" })
    {
        // --admin-token-file beats a CP_ADMIN_TOKEN left in the environment; both from one source are refused.
        Alternatives = [["AdminToken", "AdminTokenFile"]],
    };
}
