using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ControlPlane.Tests.Support;

/// <summary>
/// A private CA made inside the test, written as PEM files with a server certificate it signed for 127.0.0.1 and
/// localhost; <see cref="IssueClient"/> adds client certificates. Nothing touches the machine's trust store.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    private const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    private readonly X509Certificate2 _ca;
    private readonly string _directory;
    private readonly string _name;

    private TestCertificates(string directory, string name, X509Certificate2 ca)
    {
        _directory = directory;
        _name = name;
        _ca = ca;
        CaFile = Write($"{name}-ca.pem", ca.ExportCertificatePem());
        (ServerCertFile, ServerKeyFile) = Issue("server", ServerAuth, server: true);
    }

    /// <summary>The CA's certificate (PEM): what --ca and --client-ca take.</summary>
    public string CaFile { get; }

    /// <summary>The scheduler's certificate for 127.0.0.1 and localhost (PEM), for --tls-cert.</summary>
    public string ServerCertFile { get; }

    /// <summary>The private key of <see cref="ServerCertFile"/> (PEM), for --tls-key.</summary>
    public string ServerKeyFile { get; }

    /// <summary>A new CA named <paramref name="name"/> whose files go to <paramref name="directory"/>.</summary>
    public static TestCertificates Create(string directory, string name = "test")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN=ControlPlane {name} CA", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return new TestCertificates(directory, name, request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30)));
    }

    /// <summary>
    /// A client certificate whose subject is CN=<paramref name="commonName"/>, with <paramref name="dnsNames"/> as DNS
    /// subject alternative names, signed by this CA: (cert, key) PEM files.
    /// </summary>
    public (string Cert, string Key) IssueClient(string commonName, params string[] dnsNames) => Issue(commonName, ClientAuth, server: false, dnsNames);

    public void Dispose() => _ca.Dispose();

    private (string Cert, string Key) Issue(string commonName, string usage, bool server, string[]? dnsNames = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_ca, true, false));
        if (server)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(IPAddress.Loopback);
            names.AddDnsName("localhost");
            request.CertificateExtensions.Add(names.Build());
        }
        else if (dnsNames is { Length: > 0 })
        {
            var names = new SubjectAlternativeNameBuilder();
            foreach (var dns in dnsNames)
            {
                names.AddDnsName(dns);
            }

            request.CertificateExtensions.Add(names.Build());
        }

        var now = DateTimeOffset.UtcNow;
        using var certificate = request.Create(_ca, now.AddHours(-1), now.AddDays(29), RandomNumberGenerator.GetBytes(16));
        var file = dnsNames is { Length: > 0 } ? $"{commonName}+{string.Join('+', dnsNames)}" : commonName;
        return (Write($"{_name}-{file}.pem", certificate.ExportCertificatePem()), Write($"{_name}-{file}.key", key.ExportPkcs8PrivateKeyPem()));
    }

    private string Write(string name, string pem)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, pem);
        return path;
    }
}
