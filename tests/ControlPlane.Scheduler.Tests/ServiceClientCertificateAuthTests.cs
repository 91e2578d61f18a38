using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using ControlPlane.Scheduler.Security;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

/// <summary>
/// With --client-ca, an agent may authenticate by its client certificate instead of a bearer token: the certificate's
/// CN or a DNS SAN is the one agent id it may connect as, and it allows AgentService.Connect only.
/// </summary>
public sealed class ServiceClientCertificateAuthTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cp-cert-auth-").FullName;
    private readonly TestCertificates _pki;

    public ServiceClientCertificateAuthTests() => _pki = TestCertificates.Create(_dir, "test");

    public void Dispose()
    {
        _pki.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Connect_CertificateForAgent2_SaysHelloAsAgent1_PermissionDeniedAndNothingRegistered()
    {
        await using var host = await StartAsync();
        using var channel = ChannelFor(host, _pki.IssueClient("agent-2"));

        await using var impostor = await ServiceScriptedAgent.ConnectAsync(channel, ServiceScriptedAgent.Hello("agent-1"));
        var status = await impostor.Ended.WaitAsync(ServiceTestHost.Timeout);
        var agents = await host.Store.ListAgentsAsync(CancellationToken.None);

        Assert.Equal(StatusCode.PermissionDenied, status.StatusCode);
        Assert.Contains("'agent-1'", status.Detail, StringComparison.Ordinal);
        Assert.Contains("certificate:agent-2", status.Detail, StringComparison.Ordinal);
        Assert.Empty(agents);
    }

    [Theory]
    [InlineData("agent-1", new string[0], "agent-1")]
    [InlineData("host-7.example", new[] { "agent-1" }, "agent-1")]
    [InlineData("host-7.example", new[] { "spare", "agent-1" }, "host-7.example")]
    public async Task Connect_CertificateNamingTheAgentByCnOrSan_Welcomed(string commonName, string[] dnsNames, string agentId)
    {
        await using var host = await StartAsync();
        using var channel = ChannelFor(host, _pki.IssueClient(commonName, dnsNames));

        await using var agent = await ServiceScriptedAgent.ConnectAsync(channel, ServiceScriptedAgent.Hello(agentId));
        var first = await agent.NextAsync().WaitAsync(ServiceTestHost.Timeout);
        var agents = await host.Store.ListAgentsAsync(CancellationToken.None);

        Assert.Equal(ConnectResponse.MessageOneofCase.Welcome, first.MessageCase);
        Assert.Equal(agentId, Assert.Single(agents).AgentId);
    }

    [Fact]
    public async Task Certificate_AnyOtherRpc_PermissionDenied()
    {
        await using var host = await StartAsync();
        using var channel = ChannelFor(host, _pki.IssueClient("agent-1"));

        var list = await Assert.ThrowsAsync<RpcException>(() => new RunService.RunServiceClient(channel).ListRunsAsync(new ListRunsRequest()).ResponseAsync);
        var drain = await Assert.ThrowsAsync<RpcException>(() => new AdminService.AdminServiceClient(channel).DrainAgentAsync(new DrainAgentRequest { AgentId = "agent-1" }).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, list.StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, drain.StatusCode);
        Assert.Contains("certificate:agent-1", list.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Certificate_WithABearerToken_TheTokenDecides()
    {
        await using var host = await StartAsync();
        using var channel = ChannelFor(host, _pki.IssueClient("agent-1"));
        var reader = await AddTokenAsync(host, "ci", TokenRole.Reader);

        var runs = await new RunService.RunServiceClient(channel).ListRunsAsync(new ListRunsRequest(), new Metadata { { "authorization", "Bearer " + reader } });
        var status = await RefusedAsync(channel, ServiceScriptedAgent.Hello("agent-1"), new Metadata { { "authorization", "Bearer " + reader } });

        Assert.Empty(runs.Runs);
        Assert.Equal(StatusCode.PermissionDenied, status.StatusCode);
        Assert.Contains("'ci'", status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoCertificateNoToken_Unauthenticated()
    {
        await using var host = await StartAsync();
        using var channel = ChannelFor(host, null);

        var status = await RefusedAsync(channel, ServiceScriptedAgent.Hello("agent-1"));

        Assert.Equal(StatusCode.Unauthenticated, status.StatusCode);
    }

    /// <summary>
    /// The status of a Connect refused before Hello is read (authentication or the role): writing Hello itself may
    /// already fail with it.
    /// </summary>
    private static async Task<Status> RefusedAsync(GrpcChannel channel, Hello hello, Metadata? headers = null)
    {
        try
        {
            await using var agent = await ServiceScriptedAgent.ConnectAsync(channel, hello, headers);
            return await agent.Ended.WaitAsync(ServiceTestHost.Timeout);
        }
        catch (RpcException ex)
        {
            return ex.Status;
        }
    }

    private sealed record Host(SchedulerServer Server, EmbeddedRunStore Store, EmbeddedTokenStore Tokens) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Server.DisposeAsync();
            await Store.DisposeAsync();
        }
    }

    private async Task<Host> StartAsync()
    {
        var options = new SchedulerOptions
        {
            Listen = "127.0.0.1:0",
            AdminToken = AuthTestHost.AdminSecret,
            TlsCert = _pki.ServerCertFile,
            TlsKey = _pki.ServerKeyFile,
            ClientCa = _pki.CaFile,
        };
        var store = new EmbeddedRunStore(options.CreateStoreOptions());
        var tokens = new EmbeddedTokenStore();
        var server = new SchedulerServer(options, store) { TokenStore = tokens };
        await server.StartAsync();
        return new Host(server, store, tokens);
    }

    private static async Task<string> AddTokenAsync(Host host, string name, TokenRole role)
    {
        var secret = TokenSecrets.Create();
        await host.Tokens.PutAsync(new ApiToken(TokenSecrets.Hash(secret), name, role, "default", null, DateTimeOffset.UtcNow, null, null), replace: true, CancellationToken.None);
        return secret;
    }

    /// <summary>An https channel trusting the test CA, presenting <paramref name="client"/> when given.</summary>
    private GrpcChannel ChannelFor(Host host, (string Cert, string Key)? client)
    {
        var ca = new X509Certificate2Collection();
        ca.ImportFromPemFile(_pki.CaFile);
        var handler = new SocketsHttpHandler();
        handler.SslOptions.CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        handler.SslOptions.CertificateChainPolicy.CustomTrustStore.AddRange(ca);
        if (client is { } files)
        {
            using var pem = X509Certificate2.CreateFromPemFile(files.Cert, files.Key);
            handler.SslOptions.ClientCertificates = [X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null)];
            handler.SslOptions.LocalCertificateSelectionCallback = (_, _, certificates, _, _) => certificates[0];
        }

        var port = host.Server.Addresses[0].Port;
        return GrpcChannel.ForAddress($"https://127.0.0.1:{port}", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
    }
}
