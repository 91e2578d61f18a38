using ControlPlane.Cli.Internal;
using ControlPlane.Scheduler;
using ControlPlane.Tests.Support;
using Xunit;

namespace ControlPlane.Cli.Tests;

/// <summary>cpctl against a TLS scheduler with a private CA made in the test: trust by --ca, mutual TLS by --cert/--key, one clear line when TLS is why a call fails.</summary>
public sealed class CpctlTlsTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("cpctl-tls-").FullName;
    private TestCertificates _pki = null!;
    private TestCertificates _otherPki = null!;
    private readonly List<SchedulerServer> _servers = [];

    public Task InitializeAsync()
    {
        _pki = TestCertificates.Create(_dir, "test");
        _otherPki = TestCertificates.Create(_dir, "other");
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var server in _servers)
        {
            await server.DisposeAsync();
        }

        _pki.Dispose();
        _otherPki.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task RunLs_HttpsWithCa_Succeeds()
    {
        var port = await StartAsync();

        var result = await Cpctl([], "--scheduler", $"https://127.0.0.1:{port}", "--ca", _pki.CaFile, "run", "ls");

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
    }

    [Fact]
    public async Task RunLs_CaFromTheEnvironmentAndLocalhost_Succeeds()
    {
        var port = await StartAsync();

        var result = await Cpctl(new() { ["CP_SCHEDULER"] = $"https://localhost:{port}", ["CP_CA"] = _pki.CaFile }, "run", "ls");

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
    }

    [Fact]
    public async Task RunLs_HttpsWithoutCa_OneLineNamingTheIssuerAndTheCaOption()
    {
        var port = await StartAsync();

        var result = await Cpctl([], "--scheduler", $"https://127.0.0.1:{port}", "run", "ls");

        Assert.Equal(ExitCodes.Failure, result.ExitCode);
        var line = Assert.Single(Lines(result.Error));
        Assert.Equal(
            $"error: the scheduler at https://127.0.0.1:{port} presented a certificate issued by 'CN=ControlPlane test CA', which this machine does not trust; pass that CA's PEM certificate with --ca (or CP_CA)",
            line);
    }

    [Fact]
    public async Task RunLs_HttpsWithAnotherCa_OneLineSayingItDoesNotChain()
    {
        var port = await StartAsync();

        var result = await Cpctl([], "--scheduler", $"https://127.0.0.1:{port}", "--ca", _otherPki.CaFile, "run", "ls");

        Assert.Equal(ExitCodes.Failure, result.ExitCode);
        var line = Assert.Single(Lines(result.Error));
        Assert.Contains("does not chain to the CA given with --ca ('CN=ControlPlane other CA')", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunLs_PlainTextAgainstTls_OneLineSayingUseHttps()
    {
        var port = await StartAsync();

        var result = await Cpctl([], "--scheduler", $"http://127.0.0.1:{port}", "run", "ls");

        Assert.Equal(ExitCodes.Failure, result.ExitCode);
        var line = Assert.Single(Lines(result.Error));
        Assert.Equal($"error: the scheduler at http://127.0.0.1:{port} speaks TLS; use https:// and --ca (or CP_CA) if its certificate is private", line);
    }

    [Fact]
    public async Task RunLs_HttpsAgainstPlainText_OneLineSayingUseHttp()
    {
        var port = await StartAsync(tls: false);

        var result = await Cpctl([], "--scheduler", $"https://127.0.0.1:{port}", "--ca", _pki.CaFile, "run", "ls");

        Assert.Equal(ExitCodes.Failure, result.ExitCode);
        var line = Assert.Single(Lines(result.Error));
        Assert.Contains("does not answer TLS", line, StringComparison.Ordinal);
        Assert.Contains("use http://", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunLs_ClientCaAndACertificateOfThatCa_Succeeds()
    {
        var port = await StartAsync(clientCa: true);
        var (cert, key) = _pki.IssueClient("agent-1");

        var result = await Cpctl([], "--scheduler", $"https://127.0.0.1:{port}", "--ca", _pki.CaFile, "--cert", cert, "--key", key, "run", "ls");

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
    }

    [Fact]
    public async Task RunLs_ClientCaAndNoCertificate_StillConnects()
    {
        var port = await StartAsync(clientCa: true);

        var result = await Cpctl([], "--scheduler", $"https://127.0.0.1:{port}", "--ca", _pki.CaFile, "run", "ls");

        Assert.True(result.ExitCode == ExitCodes.Success, result.Error);
    }

    [Fact]
    public async Task RunLs_ClientCaAndACertificateOfAnotherCa_RefusedWithOneLine()
    {
        var port = await StartAsync(clientCa: true);
        var (cert, key) = _otherPki.IssueClient("intruder");

        var result = await Cpctl(new() { ["CP_CERT"] = cert, ["CP_KEY"] = key }, "--scheduler", $"https://127.0.0.1:{port}", "--ca", _pki.CaFile, "run", "ls");

        Assert.Equal(ExitCodes.Failure, result.ExitCode);
        var line = Assert.Single(Lines(result.Error));
        Assert.Equal(
            $"error: the scheduler at https://127.0.0.1:{port} refused the client certificate 'CN=intruder' (issued by 'CN=ControlPlane other CA'); pass --cert and --key of a certificate its --client-ca signed",
            line);
    }

    [Fact]
    public async Task RunLs_CertWithoutKey_InvalidInputNamingBoth()
    {
        var port = await StartAsync();
        var (cert, _) = _pki.IssueClient("half");

        var result = await Cpctl([], "--scheduler", $"https://127.0.0.1:{port}", "--ca", _pki.CaFile, "--cert", cert, "run", "ls");

        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        Assert.Contains("ClientCertificateFile and ClientKeyFile go together", result.Error, StringComparison.Ordinal);
    }

    private async Task<int> StartAsync(bool tls = true, bool clientCa = false)
    {
        var options = new SchedulerOptions { Listen = "127.0.0.1:0" };
        if (tls)
        {
            options.TlsCert = _pki.ServerCertFile;
            options.TlsKey = _pki.ServerKeyFile;
        }

        if (clientCa)
        {
            options.ClientCa = _pki.CaFile;
        }

        var server = new SchedulerServer(options, new EmbeddedRunStore(new RunStoreOptions()));
        _servers.Add(server);
        await server.StartAsync();
        return server.Addresses[0].Port;
    }

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static async Task<CpctlTests.Result> Cpctl(Dictionary<string, string> env, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var context = new CliContext(output, error, name => env.GetValueOrDefault(name));
        var exit = await Internal.Cpctl.RunAsync(args, context, handleTermination: false, CancellationToken.None).WaitAsync(Timeout);
        return new CpctlTests.Result(exit, output.ToString(), error.ToString());
    }
}
