using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;

namespace ControlPlane.Scheduler;

/// <summary>Settings of one scheduler replica, bound from configuration (section "Scheduler", CP_ variables, flags).</summary>
public sealed partial class SchedulerOptions
{
    /// <summary>Address the gRPC server listens on, HOST:PORT; port 0 picks a free port. Default is 127.0.0.1:7070.</summary>
    public string Listen { get; set; } = "127.0.0.1:7070";

    /// <summary>
    /// Address of the HTTP listener, HOST:PORT, beside the gRPC one: the dashboard, the JSON API (RunService,
    /// AdminService and AuthService.WhoAmI transcoded), /metrics, /healthz and /readyz, over HTTP/1.1 (and h2 with TLS),
    /// under the same TLS and token rules. Port 0 picks a free port; "off" serves none. Default is null: the address
    /// of <see cref="Listen"/> with its port + 10 (127.0.0.1:7080), or port 0 when Listen's port is 0.
    /// </summary>
    public string? HttpListen { get; set; }

    /// <summary>The HTTP listener's endpoint <see cref="HttpListen"/> gives (or implies); null when it is "off".</summary>
    public IPEndPoint? HttpEndpoint
    {
        get
        {
            if (HttpListen is { } text)
            {
                return text.Trim().Equals("off", StringComparison.OrdinalIgnoreCase) ? null : ParseListen(text, nameof(HttpListen));
            }

            var grpc = ParseListen(Listen);
            if (grpc.Port > IPEndPoint.MaxPort - HttpPortOffset)
            {
                throw new ArgumentException($"Listen {Listen} leaves no port at +{HttpPortOffset} for the HTTP listener; give --http-listen HOST:PORT (or off).", nameof(HttpListen));
            }

            return new IPEndPoint(grpc.Address, grpc.Port == 0 ? 0 : grpc.Port + HttpPortOffset);
        }
    }

    /// <summary>How far above the gRPC port the HTTP listener is by default (7070 and 7080).</summary>
    public const int HttpPortOffset = 10;

    /// <summary>PEM certificate (chain) file: with <see cref="TlsKey"/>, the listener speaks TLS instead of h2c. Default is null (h2c).</summary>
    public string? TlsCert { get; set; }

    /// <summary>PEM private key file of <see cref="TlsCert"/>. Default is null.</summary>
    public string? TlsKey { get; set; }

    /// <summary>
    /// PEM file of the CA(s) whose client certificates the TLS listener accepts (mutual TLS). The handshake asks for a
    /// certificate; one that does not chain to these CAs is refused, a client without one may still connect (bearer
    /// tokens are the other credential). Needs <see cref="TlsCert"/>. Default is null: no client certificates asked for.
    /// </summary>
    public string? ClientCa { get; set; }

    /// <summary>
    /// File holding the first admin token (name "admin", role admin, every namespace). With it (or
    /// <see cref="AdminToken"/>) every call but grpc.health must carry a bearer token. Default is null.
    /// </summary>
    public string? AdminTokenFile { get; set; }

    /// <summary>The first admin token itself (prefer <see cref="AdminTokenFile"/>: process arguments are readable by others). Default is null.</summary>
    public string? AdminToken { get; set; }

    /// <summary>
    /// File holding the 32-byte AES-256-GCM key that encrypts stored secrets (SecretService): the 32 raw bytes, or their
    /// base64 text (<c>openssl rand -base64 32</c>). Default is null: with the embedded store, secrets are sealed with
    /// a key made at start (they live in memory only and end with the process); with Redis, SetSecret is refused.
    /// </summary>
    public string? SecretsKeyFile { get; set; }

    /// <summary>
    /// Allow a listen address other than loopback without TLS and authentication; the scheduler then warns at start and
    /// in health. Default is false.
    /// </summary>
    public bool Insecure { get; set; }

    /// <summary>Whether calls are authenticated: an admin token is configured.</summary>
    public bool AuthenticationEnabled => AdminToken is not null || AdminTokenFile is not null;

    /// <summary>Serve grpc.reflection so tools such as grpcurl can list and call the services. Default is true.</summary>
    public bool Reflection { get; set; } = true;

    /// <summary>Largest message the server accepts, in bytes (a 10,000-step RunSpec is several MiB). Default is 64 MiB.</summary>
    public int MaxReceiveMessageSize { get; set; } = 64 * 1024 * 1024;

    /// <summary>
    /// Largest SubmitRun request accepted, in bytes (64 KiB to <see cref="MaxReceiveMessageSize"/>); a larger one is
    /// refused with RESOURCE_EXHAUSTED before it is read. Default is 4 MiB.
    /// </summary>
    public int MaxSubmitSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>StackExchange.Redis configuration of the run store, e.g. "127.0.0.1:6379". Default is null: the in-process embedded store.</summary>
    public string? Redis { get; set; }

    /// <summary>Upgrade the Redis data of an older format at start; without it such data stops the start with a message. Default is false.</summary>
    public bool Migrate { get; set; }

    /// <summary>
    /// The namespace of calls that name none: no <c>cp-namespace</c> header from a token of every namespace, or with
    /// authentication off. The scheduler serves every namespace (each under Redis keys <c>cp:{namespace}:</c>); this one
    /// opens at start. Default is "default".
    /// </summary>
    public string Namespace { get; set; } = "default";

    /// <summary>Identifies this replica in Welcome and in logs. Default is null: host name and process id.</summary>
    public string? SchedulerId { get; set; }

    /// <summary>How long an attempt stays owned without a heartbeat before the reaper requeues it. Default is 30 s.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often agents must heartbeat; at most half the lease so one late heartbeat does not cost a lease. Default is 5 s.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the reaper runs (expired leases, timed-out attempts, retries whose backoff elapsed). Default is 1 s.</summary>
    public TimeSpan MaintenanceInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Most expired leases, timeouts and released retries one maintenance pass handles of each (1 to 10,000). Default is 256.</summary>
    public int MaintenanceBatch { get; set; } = 256;

    /// <summary>
    /// How long a finished run whose spec sets no retention is kept before maintenance deletes it with its events;
    /// zero keeps such runs forever (0 to 3650 days). Default is 7 days.
    /// </summary>
    public TimeSpan DefaultRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How long a disconnected agent is listed after its last contact before maintenance removes it. Default is 24 h.</summary>
    public TimeSpan AgentRetention { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Most steps one claim call gives an agent (never more than its free slots). Default is 64.</summary>
    public int ClaimBatch { get; set; } = 64;

    /// <summary>Most agent reports committed in one store call (group commit; 1 to 10,000). Default is 256.</summary>
    public int ReportBatch { get; set; } = 256;

    /// <summary>Most events WatchRun reads per store call. Default is 256.</summary>
    public int WatchBatch { get; set; } = 256;

    /// <summary>A watcher re-reads the event log this often even without a wake-up, in case a signal was lost. Default is 5 s.</summary>
    public TimeSpan WatchRecheckInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long StopAsync waits for in-flight calls and the report pipeline before giving up. Default is 10 s.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The replica id: <see cref="SchedulerId"/> or "HOST-PID".</summary>
    public string EffectiveSchedulerId =>
        string.IsNullOrEmpty(SchedulerId) ? $"{Environment.MachineName.ToLowerInvariant()}-{Environment.ProcessId}" : SchedulerId;

    /// <summary>The store settings these options imply (the lease duration), for any IRunStore implementation.</summary>
    public RunStoreOptions CreateStoreOptions() => new() { LeaseDuration = LeaseDuration, MigrateFormat = Migrate, DefaultRetention = DefaultRetention, AgentRetention = AgentRetention };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first wrong setting and how to fix it.</summary>
    public void Validate()
    {
        var grpcEndpoint = ParseListen(Listen);
        if (HttpEndpoint is { Port: > 0 } httpEndpoint && httpEndpoint.Port == grpcEndpoint.Port)
        {
            throw new ArgumentException($"HttpListen {httpEndpoint} takes Listen's port {grpcEndpoint.Port}; give the HTTP listener another port (by default it is Listen's port + {HttpPortOffset}), 0 for a free one, or off.", nameof(HttpListen));
        }
        if (Redis is not null && string.IsNullOrWhiteSpace(Redis))
        {
            throw new ArgumentException("Redis is empty; give HOST:PORT of a Redis server (e.g. 127.0.0.1:6379), or leave it unset for the embedded store.", nameof(Redis));
        }

        // The first entry of a StackExchange.Redis configuration is the server; a bare "6379" would be read as a host name.
        if (Redis is not null && !HasPort(Redis.Split(',')[0]))
        {
            throw new ArgumentException($"Redis '{Redis}' is not HOST:PORT; give the Redis server's address and port, e.g. 127.0.0.1:6379.", nameof(Redis));
        }

        if (!NamePattern().IsMatch(Namespace ?? ""))
        {
            throw new ArgumentException($"Namespace '{Namespace}' must match [a-z0-9][a-z0-9._-]{{0,62}}, e.g. \"default\" or \"team-a\".", nameof(Namespace));
        }

        if ((TlsCert is null) != (TlsKey is null))
        {
            throw new ArgumentException("TlsCert and TlsKey go together: give both PEM files (certificate and its private key) for TLS, or neither for h2c.", TlsCert is null ? nameof(TlsCert) : nameof(TlsKey));
        }

        foreach (var (file, name) in new[] { (TlsCert, nameof(TlsCert)), (TlsKey, nameof(TlsKey)) })
        {
            if (file is not null && !File.Exists(file))
            {
                throw new ArgumentException($"{name} '{file}' does not exist; give the path of a PEM file.", name);
            }
        }

        if (TlsCert is not null && TlsKey is not null)
        {
            try
            {
                using var certificate = X509Certificate2.CreateFromPemFile(TlsCert, TlsKey);
            }
            catch (Exception ex) when (ex is CryptographicException or ArgumentException)
            {
                throw new ArgumentException(
                    $"TlsCert '{TlsCert}' with TlsKey '{TlsKey}' cannot be loaded ({ex.Message}); give a PEM certificate and the PEM private key that belongs to it.",
                    nameof(TlsCert));
            }
        }

        ValidateClientCa();
        ValidateSecurity();
        InRange(MaxReceiveMessageSize, nameof(MaxReceiveMessageSize), 1024 * 1024, int.MaxValue);
        InRange(MaxSubmitSize, nameof(MaxSubmitSize), 64 * 1024, MaxReceiveMessageSize);
        Positive(LeaseDuration, nameof(LeaseDuration), "00:00:30");
        Positive(HeartbeatInterval, nameof(HeartbeatInterval), "00:00:05");
        Positive(MaintenanceInterval, nameof(MaintenanceInterval), "00:00:01");
        Positive(WatchRecheckInterval, nameof(WatchRecheckInterval), "00:00:05");
        Positive(ShutdownTimeout, nameof(ShutdownTimeout), "00:00:10");
        Positive(AgentRetention, nameof(AgentRetention), "1.00:00:00");
        if (HeartbeatInterval * 2 > LeaseDuration)
        {
            throw new ArgumentException(
                $"HeartbeatInterval ({HeartbeatInterval}) must be at most half of LeaseDuration ({LeaseDuration}) so one late heartbeat does not lose a lease; lower the interval or raise the lease.",
                nameof(HeartbeatInterval));
        }

        InRange(MaintenanceBatch, nameof(MaintenanceBatch), 1, RunStoreOptions.MaxBatch);
        if (DefaultRetention < TimeSpan.Zero || DefaultRetention > RunStoreOptions.MaxRetention)
        {
            throw new ArgumentException(
                $"DefaultRetention must be between 0 (keep forever) and 3650 days (got {DefaultRetention}); set it to e.g. 168h.", nameof(DefaultRetention));
        }

        InRange(ClaimBatch, nameof(ClaimBatch), 1, 10_000);
        InRange(ReportBatch, nameof(ReportBatch), 1, RunStoreOptions.MaxBatch);
        InRange(WatchBatch, nameof(WatchBatch), 1, 10_000);
    }

    /// <summary>The CA certificates in <see cref="ClientCa"/>; empty when it is unset.</summary>
    internal X509Certificate2Collection LoadClientCa()
    {
        var certificates = new X509Certificate2Collection();
        if (ClientCa is not null)
        {
            certificates.ImportFromPemFile(ClientCa);
        }

        return certificates;
    }

    private void ValidateClientCa()
    {
        if (ClientCa is null)
        {
            return;
        }

        if (TlsCert is null)
        {
            throw new ArgumentException(
                "ClientCa needs TlsCert and TlsKey: client certificates are asked for in the TLS handshake, so give --tls-cert and --tls-key too, or drop --client-ca.",
                nameof(ClientCa));
        }

        if (!File.Exists(ClientCa))
        {
            throw new ArgumentException($"ClientCa '{ClientCa}' does not exist; give the path of the PEM certificate of the CA that signs client certificates.", nameof(ClientCa));
        }

        int count;
        try
        {
            count = LoadClientCa().Count;
        }
        catch (CryptographicException ex)
        {
            throw new ArgumentException($"ClientCa '{ClientCa}' cannot be read ({ex.Message}); give a PEM file of one or more CA certificates.", nameof(ClientCa));
        }

        if (count == 0)
        {
            throw new ArgumentException($"ClientCa '{ClientCa}' holds no certificate; give a PEM file with at least one '-----BEGIN CERTIFICATE-----' block.", nameof(ClientCa));
        }
    }

    /// <summary>The admin token from <see cref="AdminToken"/> or the file <see cref="AdminTokenFile"/> names; null when neither is set.</summary>
    public string? ReadAdminToken() => AdminToken?.Trim() ?? (AdminTokenFile is null ? null : File.ReadAllText(AdminTokenFile).Trim());

    /// <summary>Whether <see cref="Listen"/> is a loopback address, reachable from this host only.</summary>
    public bool ListensOnLoopback => IPAddress.IsLoopback(ParseListen(Listen).Address);

    private void ValidateSecurity()
    {
        if (SecretsKeyFile is not null)
        {
            try
            {
                _ = Security.SecretCipher.ReadKeyFile(SecretsKeyFile);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new ArgumentException($"SecretsKeyFile '{SecretsKeyFile}' cannot be read ({ex.Message}); give a file holding a 32-byte key (umask 077; openssl rand -base64 32 > {SecretsKeyFile}).", nameof(SecretsKeyFile));
            }
            catch (InvalidDataException ex)
            {
                throw new ArgumentException(ex.Message, nameof(SecretsKeyFile));
            }
        }

        if (AdminToken is not null && AdminTokenFile is not null)
        {
            throw new ArgumentException("AdminToken and AdminTokenFile are both set; give the first admin token one way (the file is safer: process arguments are readable by others).", nameof(AdminToken));
        }

        if (AdminTokenFile is not null && !File.Exists(AdminTokenFile))
        {
            throw new ArgumentException($"AdminTokenFile '{AdminTokenFile}' does not exist; give a file holding the admin token (e.g. made with: umask 077; echo \"cpt_$(openssl rand -hex 24)\" > {AdminTokenFile}).", nameof(AdminTokenFile));
        }

        if (AuthenticationEnabled)
        {
            string? token;
            try
            {
                token = ReadAdminToken();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new ArgumentException($"AdminTokenFile '{AdminTokenFile}' cannot be read ({ex.Message}).", nameof(AdminTokenFile));
            }

            if (!Security.TokenSecrets.IsWellFormed(token))
            {
                throw new ArgumentException(
                    $"The admin token ({(AdminTokenFile is null ? "AdminToken" : $"in '{AdminTokenFile}'")}) must be {Security.TokenSecrets.MinLength} to {Security.TokenSecrets.MaxLength} printable characters without spaces; make a random one, e.g. cpt_$(openssl rand -hex 24).",
                    AdminTokenFile is null ? nameof(AdminToken) : nameof(AdminTokenFile));
            }
        }

        // Off loopback, anyone who reaches the port could run commands on every agent: refuse unless TLS and tokens are on, or told plainly.
        if (!ListensOnLoopback && !Insecure && (TlsCert is null || !AuthenticationEnabled))
        {
            var missing = (TlsCert is null, AuthenticationEnabled) switch
            {
                (true, false) => "without TLS and without authentication",
                (true, true) => "without TLS",
                _ => "without authentication",
            };
            throw new ArgumentException(
                $"Listen {Listen} is not a loopback address, and the scheduler would serve it {missing}: anyone who reaches the port could submit commands that every agent runs. Give --tls-cert/--tls-key and --admin-token-file (or CP_ADMIN_TOKEN), listen on 127.0.0.1, or pass --insecure to do it anyway.",
                nameof(Listen));
        }

        // The HTTP listener serves the same API (JSON) and the dashboard: the same rule holds for its address.
        if (HttpEndpoint is { } http && !IPAddress.IsLoopback(http.Address) && !Insecure && (TlsCert is null || !AuthenticationEnabled))
        {
            throw new ArgumentException(
                $"HttpListen {http} is not a loopback address, and the scheduler would serve its dashboard and JSON API there {(TlsCert is null ? "without TLS" : "without authentication")}; give --tls-cert/--tls-key and --admin-token-file (or CP_ADMIN_TOKEN), give --http-listen 127.0.0.1:PORT (or off), or pass --insecure to do it anyway.",
                nameof(HttpListen));
        }
    }

    /// <summary>Parses HOST:PORT (an IP address or "localhost", port 0-65535) into an endpoint.</summary>
#pragma warning disable CA2208 // The exceptions name the setting (Listen) a user must fix, not this method's parameter.
    public static IPEndPoint ParseListen(string? listen, string setting = nameof(Listen))
    {
        const string Hint = "use HOST:PORT such as 127.0.0.1:7070, 0.0.0.0:7070 or [::1]:7070 (port 0 picks a free port)";
        if (string.IsNullOrWhiteSpace(listen))
        {
            throw new ArgumentException($"{setting} is empty; {Hint}.", setting);
        }

        var text = listen.Trim();
        if (text.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            text = text["http://".Length..].TrimEnd('/');
        }

        var colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
        {
            throw new ArgumentException($"{setting} '{listen}' has no port; {Hint}.", setting);
        }

        var host = text[..colon].Trim('[', ']');
        if (!int.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            throw new ArgumentException($"{setting} '{listen}' has an invalid port '{text[(colon + 1)..]}'; {Hint}.", setting);
        }

        IPAddress? address = host.Equals("localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback : null;
        if (address is null && !IPAddress.TryParse(host, out address))
        {
            throw new ArgumentException($"{setting} '{listen}' has host '{host}', which is not an IP address; {Hint}.", setting);
        }

        return new IPEndPoint(address, port);
    }
#pragma warning restore CA2208

    private static bool HasPort(string endpoint)
    {
        var colon = endpoint.LastIndexOf(':');
        return colon > 0
            && int.TryParse(endpoint.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            && port is > 0 and <= 65535;
    }

    private static void Positive(TimeSpan value, string name, string example)
    {
        if (value <= TimeSpan.Zero)
        {
            throw new ArgumentException($"{name} must be positive (got {value}); set it to e.g. {example}.", name);
        }
    }

    private static void InRange(int value, string name, int min, int max)
    {
        if (value < min || value > max)
        {
            throw new ArgumentException($"{name} must be between {min} and {max} (got {value}).", name);
        }
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();
}
