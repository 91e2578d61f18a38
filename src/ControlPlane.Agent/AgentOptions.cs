using System.Text;
using System.Text.RegularExpressions;

namespace ControlPlane.Agent;

/// <summary>Settings of one agent daemon (the table is <see cref="AgentHostBuilder.Settings"/>); call <see cref="Validate"/> at start-up.</summary>
public sealed partial class AgentOptions
{
    /// <summary>
    /// The scheduler's gRPC address, "http://host:port" (h2c) or "https://host:port" (TLS); several replicas'
    /// addresses comma-separated, tried in turn on every reconnect, so a replica that dies does not pin its agents to
    /// its address (at most <see cref="MaxSchedulerAddresses"/>). Default is "http://127.0.0.1:7070".
    /// </summary>
    public string SchedulerAddress { get; set; } = "http://127.0.0.1:7070";

    /// <summary>Most scheduler addresses <see cref="SchedulerAddress"/> may list.</summary>
    public const int MaxSchedulerAddresses = 64;

    /// <summary>The addresses <see cref="SchedulerAddress"/> lists, in order, blanks dropped.</summary>
    public IReadOnlyList<string> SchedulerAddresses =>
        (SchedulerAddress ?? string.Empty).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    /// <summary>PEM file of the CA(s) that signed the scheduler's certificate, trusted as the only roots on https:// addresses. Default is null: the system trust store.</summary>
    public string? CaFile { get; set; }

    /// <summary>PEM client certificate for mutual TLS (signed by the scheduler's --client-ca), with <see cref="KeyFile"/>. Default is null.</summary>
    public string? CertFile { get; set; }

    /// <summary>PEM private key of <see cref="CertFile"/>. Default is null.</summary>
    public string? KeyFile { get; set; }

    /// <summary>Stable identity of this agent across reconnects and restarts, [a-z0-9][a-z0-9._-]{0,62}. Default is the host name, lower-cased with other characters replaced by '-'.</summary>
    public string AgentId { get; set; } = SanitizeAgentId(Environment.MachineName);

    /// <summary>
    /// Bearer token sent on Connect when the scheduler runs with authentication on (an agent token naming this
    /// agent's id). Prefer <see cref="TokenFile"/>: process arguments and unit files are readable by others. Default is null.
    /// </summary>
    public string? Token { get; set; }

    /// <summary>File holding the bearer token; read again on every connect, so a rotated token takes effect. Default is null.</summary>
    public string? TokenFile { get; set; }

    /// <summary>
    /// The namespace this agent serves, [a-z0-9][a-z0-9._-]{0,62}, sent as <c>cp-namespace</c> on Connect: it gets steps
    /// of that namespace's runs only. Default is null: its token's namespace, or the scheduler's default one.
    /// </summary>
    public string? Namespace { get; set; }

    /// <summary>The token to send: <see cref="Token"/>, else the content of <see cref="TokenFile"/>, else null.</summary>
    public string? ReadToken() => Token?.Trim() ?? (TokenFile is null ? null : File.ReadAllText(TokenFile).Trim());

    /// <summary>How many step slots this agent runs at once. Default is the processor count.</summary>
    public int Slots { get; set; } = Environment.ProcessorCount;

    /// <summary>Queues this agent takes steps from. Default is ["default"].</summary>
    public IList<string> Queues { get; set; } = new List<string> { "default" };

    /// <summary>Free-form labels announced to the scheduler. Default is none.</summary>
    public IDictionary<string, string> Labels { get; set; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// Directory under which each attempt gets its own work directory (0700); the agent creates it 0700 and refuses to
    /// start when it is world-writable or another user's. Default is null: $STATE_DIRECTORY/&lt;agent id&gt; under a systemd
    /// unit with StateDirectory=, else $XDG_STATE_HOME (or ~/.local/state)/controlplane/agent/&lt;agent id&gt;.
    /// </summary>
    public string? WorkRoot { get; set; }

    /// <summary>
    /// Names of agent environment variables shell steps also get, besides PATH, HOME, LANG and TZ; a trailing '*' matches
    /// a prefix (AWS_*). CP_ variables (the agent's settings and token) never pass. Default is none.
    /// </summary>
    public IList<string> PassEnv { get; set; } = new List<string>();

    /// <summary>Heartbeat interval used until the scheduler's Welcome sets one. Default is 5 s.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>On a local stop (SIGTERM), how long running steps may finish before they are killed. Default is 30 s.</summary>
    public TimeSpan ShutdownGracePeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Time between SIGTERM and SIGKILL when a shell step's process tree is stopped. Default is 5 s.</summary>
    public TimeSpan KillGracePeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long to wait for the scheduler's Welcome after Hello before reconnecting. Default is 10 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest wait between reconnect attempts (exponential backoff with jitter). Default is 5 s.</summary>
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Log lines kept while the scheduler is unreachable, across all attempts (each attempt also keeps at most 1 MiB of
    /// them); later lines are dropped and counted in a line of their own. Progress and checkpoints keep the latest
    /// per attempt; results are never dropped. Default is 10,000.
    /// </summary>
    public int MaxBufferedReports { get; set; } = 10_000;

    /// <summary>Keep each attempt's work directory after it ends (for debugging). Default is false.</summary>
    public bool KeepWorkDirectories { get; set; }

    /// <summary>
    /// HOST:PORT where the agent serves Prometheus metrics at /metrics over plain HTTP, without authentication: keep it
    /// on loopback, or on an interface only the scraper reaches. 0.0.0.0, [::] or * listen on every interface and
    /// answer any Host header; a named host or address answers only requests whose Host header names it (HttpListener
    /// matches the Host header). The port must be given (1-65535); IPv6 literals other than [::] are refused, as
    /// HttpListener cannot parse them. Default is off (null).
    /// </summary>
    public string? MetricsListen { get; set; }

    /// <summary>The work root in effect: <see cref="WorkRoot"/> or its default.</summary>
    public string EffectiveWorkRoot =>
        string.IsNullOrWhiteSpace(WorkRoot) ? Internal.WorkRoot.Default(AgentId, Environment.GetEnvironmentVariable) : WorkRoot;

    /// <summary>
    /// Throws <see cref="ArgumentException"/> listing every invalid setting and how to fix it; its ParamName is the
    /// property of the first, so a host can say where that value came from.
    /// </summary>
    public void Validate()
    {
        var problems = FindProblems();
        if (problems.Count == 1)
        {
            throw new ArgumentException(problems[0].Message, problems[0].Property);
        }

        if (problems.Count > 1)
        {
            throw new ArgumentException(
                "Invalid agent options:" + Environment.NewLine + "  " + string.Join(Environment.NewLine + "  ", problems.Select(p => p.Message)),
                problems[0].Property);
        }
    }

    /// <summary>Every invalid setting: the property and a message that names it and says how to fix it.</summary>
    internal IReadOnlyList<(string Property, string Message)> FindProblems()
    {
        var errors = new List<(string, string)>();
        var addresses = SchedulerAddresses;
        if (addresses.Count == 0)
        {
            errors.Add((nameof(SchedulerAddress), "SchedulerAddress is empty; set it like http://127.0.0.1:7070, or several replicas comma-separated."));
        }
        else if (addresses.Count > MaxSchedulerAddresses)
        {
            errors.Add((nameof(SchedulerAddress), $"SchedulerAddress lists {addresses.Count} addresses; give at most {MaxSchedulerAddresses}, or one DNS name with several addresses."));
        }

        foreach (var address in addresses.Take(MaxSchedulerAddresses))
        {
            if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
            {
                errors.Add((nameof(SchedulerAddress), $"SchedulerAddress '{address}' is not an http:// or https:// address; set it like http://127.0.0.1:7070."));
            }
        }

        FindTlsProblems(errors);
        if (!IdPattern().IsMatch(AgentId ?? string.Empty))
        {
            errors.Add((nameof(AgentId), $"AgentId '{AgentId}' must match [a-z0-9][a-z0-9._-]{{0,62}}; use lower-case letters, digits, '.', '_' or '-', e.g. gpu-box-1."));
        }

        if (Namespace is not null && !IdPattern().IsMatch(Namespace))
        {
            errors.Add((nameof(Namespace), $"Namespace '{Namespace}' must match [a-z0-9][a-z0-9._-]{{0,62}}; use lower-case letters, digits, '.', '_' or '-', e.g. team-a, or leave it unset to serve the token's namespace."));
        }

        if (Token is not null && TokenFile is not null)
        {
            errors.Add((nameof(Token), "Token and TokenFile are both set; give the token one way (TokenFile is safer: arguments are readable by others)."));
        }
        else if (TokenFile is not null && !File.Exists(TokenFile))
        {
            errors.Add((nameof(TokenFile), $"TokenFile '{TokenFile}' does not exist; give the file that holds this agent's token (cpctl auth token create --role agent prints one)."));
        }
        else if (Token is not null && (Token.Trim().Length == 0 || Token.Trim().Any(c => c is <= ' ' or > '~')))
        {
            errors.Add((nameof(Token), "Token must be printable ASCII without spaces; pass it exactly as 'cpctl auth token create' printed it."));
        }

        if (Slots < 1 || Slots > 10_000)
        {
            errors.Add((nameof(Slots), $"Slots is {Slots}; set it between 1 and 10000."));
        }

        if (Queues is null || Queues.Count == 0)
        {
            errors.Add((nameof(Queues), "Queues is empty; name at least one queue, e.g. \"default\"."));
        }
        else
        {
            foreach (var queue in Queues.Where(q => !IdPattern().IsMatch(q ?? string.Empty)))
            {
                errors.Add((nameof(Queues), $"Queues entry '{queue}' must match [a-z0-9][a-z0-9._-]{{0,62}}; use lower-case letters, digits, '.', '_' or '-'."));
            }
        }

        CheckPositive(errors, nameof(HeartbeatInterval), HeartbeatInterval);
        CheckPositive(errors, nameof(ConnectTimeout), ConnectTimeout);
        CheckPositive(errors, nameof(MaxReconnectDelay), MaxReconnectDelay);
        if (ShutdownGracePeriod < TimeSpan.Zero)
        {
            errors.Add((nameof(ShutdownGracePeriod), $"ShutdownGracePeriod is {ShutdownGracePeriod}; set it to 0 or more, e.g. 30s."));
        }

        if (KillGracePeriod < TimeSpan.Zero)
        {
            errors.Add((nameof(KillGracePeriod), $"KillGracePeriod is {KillGracePeriod}; set it to 0 or more, e.g. 5s."));
        }

        if (PassEnv is { Count: > Internal.StepEnvironment.MaxPassNames })
        {
            errors.Add((nameof(PassEnv), $"PassEnv lists {PassEnv.Count} names; give at most {Internal.StepEnvironment.MaxPassNames} (a trailing '*' matches a prefix, e.g. AWS_*)."));
        }
        else
        {
            foreach (var problem in (PassEnv ?? []).Select(Internal.StepEnvironment.Problem).OfType<string>())
            {
                errors.Add((nameof(PassEnv), problem));
            }
        }

        if (MetricsListen is not null && Internal.AgentMetrics.Parse(MetricsListen) is null)
        {
            errors.Add((nameof(MetricsListen), $"MetricsListen '{MetricsListen}' is not HOST:PORT with a port of 1-65535 (HOST a name or an IPv4 address; for IPv6 only [::], every interface); set it like 127.0.0.1:9464 (0.0.0.0:9464 for every interface), or leave it unset."));
        }

        if (MaxBufferedReports < 100)
        {
            errors.Add((nameof(MaxBufferedReports), $"MaxBufferedReports is {MaxBufferedReports}; set it to 100 or more."));
        }

        return errors;
    }

    /// <summary>The private CA and the client certificate the options name (each null when not set).</summary>
    internal (System.Security.Cryptography.X509Certificates.X509Certificate2Collection? Ca, System.Security.Cryptography.X509Certificates.X509Certificate2? Certificate) LoadTls() =>
        (CaFile is null ? null : global::ControlPlane.Internal.ClientTls.LoadCa(CaFile, nameof(CaFile)),
         global::ControlPlane.Internal.ClientTls.LoadClientCertificate(CertFile, KeyFile, nameof(CertFile), nameof(KeyFile)));

    private void FindTlsProblems(List<(string, string)> errors)
    {
        try
        {
            using var loaded = LoadTls().Certificate;
        }
        catch (ArgumentException ex)
        {
            errors.Add((ex.ParamName ?? nameof(CaFile), ex.Message.Replace($" (Parameter '{ex.ParamName}')", string.Empty, StringComparison.Ordinal)));
        }
    }

    /// <summary>Turns a host name into a valid agent id: lower-case, other characters become '-', at most 63 characters.</summary>
    public static string SanitizeAgentId(string? name)
    {
        var builder = new StringBuilder();
        foreach (var c in (name ?? string.Empty).ToLowerInvariant())
        {
            builder.Append(c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '_' or '-' ? c : '-');
        }

        var id = builder.ToString().TrimStart('.', '_', '-');
        if (id.Length > 63)
        {
            id = id[..63];
        }

        return id.Length == 0 ? "agent" : id;
    }

    private static void CheckPositive(List<(string, string)> errors, string name, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            errors.Add((name, $"{name} is {value}; set it to a positive duration, e.g. 5s."));
        }
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$")]
    private static partial Regex IdPattern();
}
