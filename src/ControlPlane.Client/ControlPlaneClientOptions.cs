using System.Net.Security;
using System.Text.RegularExpressions;
using Grpc.Net.Client;

namespace ControlPlane.Client;

/// <summary>Options of a <see cref="ControlPlaneClient"/>; validated when the client is created.</summary>
public sealed partial class ControlPlaneClientOptions
{
    /// <summary>The scheduler's address: "http://host:port" (h2c) or "https://host:port" (TLS). Default is http://127.0.0.1:7070.</summary>
    public string Address { get; set; } = "http://127.0.0.1:7070";

    /// <summary>Validates the scheduler's certificate on https:// addresses; null uses the system trust store. Default is null.</summary>
    public RemoteCertificateValidationCallback? ServerCertificateValidation { get; set; }

    /// <summary>
    /// PEM file of the CA(s) that signed the scheduler's certificate, trusted as the only roots on https:// addresses (a
    /// private CA); null uses the system trust store. Default is null.
    /// </summary>
    public string? CaFile { get; set; }

    /// <summary>PEM client certificate offered for mutual TLS (the scheduler's --client-ca signed it), with <see cref="ClientKeyFile"/>. Default is null.</summary>
    public string? ClientCertificateFile { get; set; }

    /// <summary>PEM private key of <see cref="ClientCertificateFile"/>. Default is null.</summary>
    public string? ClientKeyFile { get; set; }

    /// <summary>Sent as <c>authorization: Bearer &lt;token&gt;</c> on every call; null sends none. Default is null.</summary>
    public string? BearerToken { get; set; }

    /// <summary>
    /// Sent as <c>cp-namespace: NAME</c> on every call: the namespace the call acts in, [a-z0-9][a-z0-9._-]{0,62}. A
    /// token of another namespace is refused (PERMISSION_DENIED, NAMESPACE_NOT_ALLOWED). Null sends none: the call acts
    /// in its token's namespace, or the scheduler's default one. Default is null.
    /// </summary>
    public string? Namespace { get; set; }

    /// <summary>
    /// Deadline of each unary call, retries included; null means none. Watch streams have no deadline.
    /// Default is 30 s.
    /// </summary>
    public TimeSpan? DefaultDeadline { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Retries of an idempotent call that failed with UNAVAILABLE (Get, List, GetStepOutput, ListAgents, Submit with an
    /// idempotency key), and reconnects of a watch that made no progress. 0 disables retries. Default is 5.
    /// </summary>
    public int MaxRetryAttempts { get; set; } = 5;

    /// <summary>Wait before the first retry; later waits grow exponentially, with jitter. Default is 200 ms.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Longest wait between two retries. Default is 5 s.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Clock of the delays between SubmitRun retries and watch reconnects (grpc's retry policy for the read calls and
    /// deadlines use the system clock). Default is <see cref="TimeProvider.System"/>.
    /// </summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Delay of an HTTP/2 keep-alive ping on a connection with calls in flight but nothing received. Default is 30 s.</summary>
    public TimeSpan KeepAlivePingDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A ping unanswered for this long closes the connection (its calls fail with UNAVAILABLE and are retried). Default is 20 s.</summary>
    public TimeSpan KeepAlivePingTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Largest response accepted, in bytes (a run of 10,000 steps is several MiB). Default is 64 MiB.</summary>
    public int MaxReceiveMessageSize { get; set; } = 64 * 1024 * 1024;

    /// <summary>Adjusts the channel after the client has set its own options (a test handler, credentials, limits). Default is null.</summary>
    public Action<GrpcChannelOptions>? ConfigureChannel { get; set; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad option and how to fix it.</summary>
    public void Validate()
    {
        if (!Uri.TryCreate(Address, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException(
                $"ControlPlaneClientOptions.Address '{Address}' is not an http:// or https:// URL; use e.g. http://127.0.0.1:7070.",
                nameof(Address));
        }

        ValidateTls();
        if (BearerToken is not null && (BearerToken.Length == 0 || BearerToken.Any(c => c < 0x20 || c > 0x7e)))
        {
            throw new ArgumentException("ControlPlaneClientOptions.BearerToken must be non-empty printable ASCII; leave it null to send none.", nameof(BearerToken));
        }

        if (Namespace is not null && !NamespacePattern().IsMatch(Namespace))
        {
            throw new ArgumentException(
                $"ControlPlaneClientOptions.Namespace '{Namespace}' must match [a-z0-9][a-z0-9._-]{{0,62}} (lower-case letters, digits, '.', '_' or '-', e.g. team-a); leave it null to act in the token's namespace.",
                nameof(Namespace));
        }

        if (DefaultDeadline is { } deadline && deadline <= TimeSpan.Zero)
        {
            throw new ArgumentException($"ControlPlaneClientOptions.DefaultDeadline is {deadline}; use a positive duration, or null for none.", nameof(DefaultDeadline));
        }

        if (MaxRetryAttempts < 0)
        {
            throw new ArgumentException($"ControlPlaneClientOptions.MaxRetryAttempts is {MaxRetryAttempts}; use 0 (no retries) or more.", nameof(MaxRetryAttempts));
        }

        if (RetryBaseDelay <= TimeSpan.Zero || RetryMaxDelay < RetryBaseDelay)
        {
            throw new ArgumentException(
                $"ControlPlaneClientOptions.RetryBaseDelay ({RetryBaseDelay}) must be positive and at most RetryMaxDelay ({RetryMaxDelay}).",
                nameof(RetryBaseDelay));
        }

        if (KeepAlivePingDelay <= TimeSpan.Zero || KeepAlivePingTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException(
                $"ControlPlaneClientOptions.KeepAlivePingDelay ({KeepAlivePingDelay}) and KeepAlivePingTimeout ({KeepAlivePingTimeout}) must be positive.",
                nameof(KeepAlivePingDelay));
        }

        if (MaxReceiveMessageSize < 1024)
        {
            throw new ArgumentException($"ControlPlaneClientOptions.MaxReceiveMessageSize is {MaxReceiveMessageSize}; use at least 1024 bytes (default 64 MiB).", nameof(MaxReceiveMessageSize));
        }

        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
    }

    private void ValidateTls()
    {
        if (CaFile is not null && !File.Exists(CaFile))
        {
            throw new ArgumentException($"ControlPlaneClientOptions.CaFile '{CaFile}' does not exist; give the PEM certificate of the CA that signed the scheduler's certificate.", nameof(CaFile));
        }

        if ((ClientCertificateFile is null) != (ClientKeyFile is null))
        {
            throw new ArgumentException(
                "ControlPlaneClientOptions.ClientCertificateFile and ClientKeyFile go together: give both PEM files (the client certificate and its private key), or neither.",
                ClientCertificateFile is null ? nameof(ClientCertificateFile) : nameof(ClientKeyFile));
        }
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$")]
    private static partial Regex NamespacePattern();
}
