using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using ControlPlane.Tests.Support;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

/// <summary>--client-ca: the TLS listener asks for client certificates and refuses, at the handshake, those of another CA.</summary>
public sealed class ServiceClientCaTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cp-client-ca-").FullName;
    private readonly TestCertificates _pki;
    private readonly TestCertificates _other;

    public ServiceClientCaTests()
    {
        _pki = TestCertificates.Create(_dir, "test");
        _other = TestCertificates.Create(_dir, "other");
    }

    public void Dispose()
    {
        _pki.Dispose();
        _other.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void Validate_ClientCaWithoutTlsCert_SaysItNeedsTls()
    {
        var ex = Assert.Throws<ArgumentException>(() => new SchedulerOptions { ClientCa = _pki.CaFile }.Validate());

        Assert.Equal("ClientCa", ex.ParamName);
        Assert.StartsWith("ClientCa needs TlsCert and TlsKey", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ClientCaWithoutACertificate_SaysWhatTheFileMustHold()
    {
        var empty = Path.Combine(_dir, "empty.pem");
        File.WriteAllText(empty, "not a certificate\n");

        var ex = Assert.Throws<ArgumentException>(() =>
            new SchedulerOptions { TlsCert = _pki.ServerCertFile, TlsKey = _pki.ServerKeyFile, ClientCa = empty }.Validate());

        Assert.Contains("holds no certificate", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("test", true)]
    [InlineData("other", false)]
    [InlineData(null, true)]
    public async Task Handshake_ClientCertificate_AcceptedOnlyFromTheClientCa(string? issuer, bool accepted)
    {
        await using var server = new SchedulerServer(
            new SchedulerOptions { Listen = "127.0.0.1:0", TlsCert = _pki.ServerCertFile, TlsKey = _pki.ServerKeyFile, ClientCa = _pki.CaFile },
            new EmbeddedRunStore(new RunStoreOptions()));
        await server.StartAsync();
        using var client = issuer is null ? null : Load(issuer == "test" ? _pki.IssueClient("agent-1") : _other.IssueClient("agent-1"));

        var answered = await HandshakeAndReadAsync(server.Addresses[0].Port, client);

        Assert.Equal(accepted, answered);
    }

    /// <summary>TLS with the scheduler, then the HTTP/2 preface: true when the scheduler answers, false when it cut the connection.</summary>
    private async Task<bool> HandshakeAndReadAsync(int port, X509Certificate2? certificate)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port);
        await using var tls = new SslStream(tcp.GetStream());
        var ca = new X509Certificate2Collection();
        ca.ImportFromPemFile(_pki.CaFile);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = "127.0.0.1",
            ApplicationProtocols = [SslApplicationProtocol.Http2],
            CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck },
            LocalCertificateSelectionCallback = (_, _, _, _, _) => certificate!,
        };
        options.CertificateChainPolicy.CustomTrustStore.AddRange(ca);
        if (certificate is not null)
        {
            options.ClientCertificates = [certificate];
        }

        try
        {
            await tls.AuthenticateAsClientAsync(options);
            await tls.WriteAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray().Concat(new byte[] { 0, 0, 0, 4, 0, 0, 0, 0, 0 }).ToArray());
            return await tls.ReadAsync(new byte[9]) > 0;
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException)
        {
            return false;
        }
    }

    private static X509Certificate2 Load((string Cert, string Key) files)
    {
        using var pem = X509Certificate2.CreateFromPemFile(files.Cert, files.Key);
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }
}
