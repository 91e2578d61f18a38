using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ControlPlane.Internal;

/// <summary>
/// TLS of a channel to the scheduler, for the client library, cpctl and the agent alike: a private CA trusted as the
/// only root (--ca / CP_CA), a client certificate for mutual TLS (--cert and --key / CP_CERT and CP_KEY), and a
/// diagnosis of a connection that failed, so the user learns which of these to change. Linked as source into each.
/// </summary>
internal static class ClientTls
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The HTTP/2 client preface and an empty SETTINGS frame: what a gRPC client sends first.</summary>
    private static readonly byte[] Http2Preface = [.. "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8, 0, 0, 0, 4, 0, 0, 0, 0, 0];

    /// <summary>The CA certificates of a PEM file; <paramref name="setting"/> names the option in the errors.</summary>
    public static X509Certificate2Collection LoadCa(string path, string setting)
    {
        if (!File.Exists(path))
        {
            throw new ArgumentException($"{setting} '{path}' does not exist; give the PEM certificate of the CA that signed the scheduler's certificate.", setting);
        }

        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPemFile(path);
        }
        catch (CryptographicException ex)
        {
            throw new ArgumentException($"{setting} '{path}' cannot be read ({ex.Message}); give a PEM file of one or more CA certificates.", setting, ex);
        }

        return certificates.Count > 0
            ? certificates
            : throw new ArgumentException($"{setting} '{path}' holds no certificate; give a PEM file with a '-----BEGIN CERTIFICATE-----' block.", setting);
    }

    /// <summary>A client certificate with its private key, from two PEM files; both or neither must be given.</summary>
    public static X509Certificate2? LoadClientCertificate(string? certPath, string? keyPath, string certSetting, string keySetting)
    {
        if (certPath is null && keyPath is null)
        {
            return null;
        }

        if (certPath is null || keyPath is null)
        {
            throw new ArgumentException(
                $"{certSetting} and {keySetting} go together: give both PEM files (the client certificate and its private key), or neither.",
                certPath is null ? certSetting : keySetting);
        }

        foreach (var (path, setting) in new[] { (certPath, certSetting), (keyPath, keySetting) })
        {
            if (!File.Exists(path))
            {
                throw new ArgumentException($"{setting} '{path}' does not exist; give the path of a PEM file.", setting);
            }
        }

        try
        {
            using var pem = X509Certificate2.CreateFromPemFile(certPath, keyPath);

            // A PEM-loaded key is ephemeral; some platforms' TLS stacks need it in a persisted form.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (CryptographicException ex)
        {
            throw new ArgumentException(
                $"{certSetting} '{certPath}' with {keySetting} '{keyPath}' cannot be loaded ({ex.Message}); give a PEM certificate and the PEM private key that belongs to it.",
                certSetting,
                ex);
        }
    }

    /// <summary>Trusts only <paramref name="ca"/> as root (when given) and offers <paramref name="clientCertificate"/> (when given).</summary>
    public static void Apply(SslClientAuthenticationOptions ssl, X509Certificate2Collection? ca, X509Certificate2? clientCertificate)
    {
        if (ca is not null)
        {
            ssl.CertificateChainPolicy = TrustOnly(ca);
        }

        if (clientCertificate is not null)
        {
            ssl.ClientCertificates = [clientCertificate];

            // Offered whatever CA names the server lists, so a server that lists none still gets it.
            ssl.LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate;
        }
    }

    /// <summary>
    /// Why a connection to <paramref name="address"/> failed, when TLS is the reason: plain text against a TLS listener,
    /// TLS against a plain one, a certificate this client does not trust or that names another host, or a client
    /// certificate the scheduler refused. Null when the scheduler is unreachable or TLS is not the problem.
    /// </summary>
    public static async Task<string?> DiagnoseAsync(Uri address, X509Certificate2Collection? ca, X509Certificate2? clientCertificate, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ProbeTimeout);
        try
        {
            return await ProbeAsync(address, ca, clientCertificate, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    private static async Task<string?> ProbeAsync(Uri address, X509Certificate2Collection? ca, X509Certificate2? clientCertificate, CancellationToken cancellationToken)
    {
        var secure = address.Scheme == Uri.UriSchemeHttps;
        var where = $"the scheduler at {address.GetLeftPart(UriPartial.Authority)}";
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(address.IdnHost, address.Port, cancellationToken).ConfigureAwait(false);

        X509Certificate2? presented = null;
        var errors = SslPolicyErrors.None;
        await using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = address.IdnHost,
            ApplicationProtocols = [SslApplicationProtocol.Http2],

            // The probe looks at whatever certificate comes, and judges it below with the client's own trust; it
            // sends no request and no token, and over a connection it does not trust not even the HTTP/2 preface.
#pragma warning disable CA5359
            RemoteCertificateValidationCallback = (_, certificate, _, policyErrors) =>
            {
                presented = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
                errors = policyErrors;
                return true;
            },
#pragma warning restore CA5359
        };
        Apply(options, ca, clientCertificate);
        bool established;
        try
        {
            await tls.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
            established = true;
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException)
        {
            established = false;
        }

        using (presented)
        {
            if (presented is null)
            {
                // No TLS server answered: plain text is not a TLS problem; TLS against a plain listener is.
                return secure ? $"{where} does not answer TLS; if it serves plain h2c (no --tls-cert), use http:// instead of https://" : null;
            }

            if (!secure)
            {
                return $"{where} speaks TLS; use https:// and --ca (or CP_CA) if its certificate is private";
            }

            if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
            {
                return ca is null
                    ? $"{where} presented a certificate issued by '{presented.Issuer}', which this machine does not trust; pass that CA's PEM certificate with --ca (or CP_CA)"
                    : $"{where} presented a certificate issued by '{presented.Issuer}', which does not chain to the CA given with --ca ('{ca[0].Subject}'); pass the CA that signed the scheduler's certificate";
            }

            if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
            {
                return $"{where} presented a certificate for '{presented.GetNameInfo(X509NameType.DnsName, false)}', not for '{address.IdnHost}'; use an address the certificate names (its subject alternative names)";
            }

            // Under TLS 1.3 the scheduler judges the client certificate after the handshake: a refusal shows on the first read.
            if (!established || !await AcceptsAsync(tls, cancellationToken).ConfigureAwait(false))
            {
                return clientCertificate is null
                    ? $"{where} refused the TLS connection; it may require a client certificate: pass one its --client-ca signed with --cert and --key (or CP_CERT and CP_KEY)"
                    : $"{where} refused the client certificate '{clientCertificate.Subject}' (issued by '{clientCertificate.Issuer}'); pass --cert and --key of a certificate its --client-ca signed";
            }

            return null;
        }
    }

    /// <summary>True when the scheduler answers an HTTP/2 preface over the established TLS session.</summary>
    private static async Task<bool> AcceptsAsync(SslStream tls, CancellationToken cancellationToken)
    {
        try
        {
            await tls.WriteAsync(Http2Preface, cancellationToken).ConfigureAwait(false);
            var buffer = new byte[9];
            return await tls.ReadAsync(buffer, cancellationToken).ConfigureAwait(false) > 0;
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException)
        {
            return false;
        }
    }

    private static X509ChainPolicy TrustOnly(X509Certificate2Collection ca)
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,

            // A private CA publishes no revocation lists; the certificate's lifetime is the bound.
            RevocationMode = X509RevocationMode.NoCheck,
        };
        policy.CustomTrustStore.AddRange(ca);
        return policy;
    }
}
