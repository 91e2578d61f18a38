using System.Net.Security;
using System.Reflection;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ControlPlane.V1;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Xunit;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace ControlPlane.Scheduler.Tests;

/// <summary>grpc.health.v1 through Grpc.AspNetCore.HealthChecks, and the TLS listener.</summary>
public sealed class ServiceHealthTests
{
    [Fact]
    public async Task Check_StoreStopsAnswering_NotServingThenServingAgain()
    {
        var store = new EmbeddedRunStore(new RunStoreOptions());
        var unreachable = UnreachableStore.Wrap(store);
        await using var server = new SchedulerServer(new SchedulerOptions { Listen = "127.0.0.1:0" }, unreachable.Store);
        await server.StartAsync();
        using var channel = GrpcChannel.ForAddress(server.Addresses[0]);
        var health = new Health.HealthClient(channel);

        var before = await health.CheckAsync(new HealthCheckRequest(), deadline: Deadline());
        unreachable.Failing = true;
        var during = await health.CheckAsync(new HealthCheckRequest { Service = "controlplane.v1.RunService" }, deadline: Deadline());
        unreachable.Failing = false;
        var after = await health.CheckAsync(new HealthCheckRequest(), deadline: Deadline());

        Assert.Equal(ServingStatus.Serving, before.Status);
        Assert.Equal(ServingStatus.NotServing, during.Status);
        Assert.Equal(ServingStatus.Serving, after.Status);
    }

    [Fact]
    public async Task Check_UnknownService_NotFound()
    {
        await using var host = await ServiceTestHost.StartAsync();

        var ex = await Assert.ThrowsAsync<RpcException>(() =>
            new Health.HealthClient(host.Channel).CheckAsync(new HealthCheckRequest { Service = "nope.v1.Nothing" }, deadline: Deadline()).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
    }

    [Fact]
    public async Task Watch_SchedulerDrains_WatcherSeesNotServing()
    {
        await using var host = await ServiceTestHost.StartAsync();
        using var cts = new CancellationTokenSource(ServiceTestHost.Timeout);
        using var watch = new Health.HealthClient(host.Channel).Watch(new HealthCheckRequest(), cancellationToken: cts.Token);
        var seen = new List<ServingStatus>();
        Assert.True(await watch.ResponseStream.MoveNext(cts.Token));
        seen.Add(watch.ResponseStream.Current.Status);

        var stopping = host.Server.StopAsync();
        try
        {
            while (await watch.ResponseStream.MoveNext(cts.Token))
            {
                seen.Add(watch.ResponseStream.Current.Status);
            }
        }
        catch (RpcException ex) when (ex.StatusCode is StatusCode.Unavailable or StatusCode.Cancelled or StatusCode.Internal)
        {
            // The drained replica cuts the watch after telling it NOT_SERVING.
        }

        await stopping.WaitAsync(ServiceTestHost.Timeout);
        Assert.Equal(ServingStatus.Serving, seen[0]);
        Assert.Equal(ServingStatus.NotServing, seen[^1]);
    }

    [Fact]
    public async Task Tls_CertificateConfigured_ServesOverTlsOnly()
    {
        using var dir = new TempDir();
        var (certFile, keyFile, thumbprint) = dir.SelfSignedCertificate();
        await using var server = new SchedulerServer(new SchedulerOptions { Listen = "127.0.0.1:0", TlsCert = certFile, TlsKey = keyFile }, new EmbeddedRunStore(new RunStoreOptions()));
        await server.StartAsync();
        var address = server.Addresses[0];
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            errors == SslPolicyErrors.RemoteCertificateChainErrors && certificate is X509Certificate2 c && c.Thumbprint == thumbprint;
        using var tls = GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler });
        using var plain = GrpcChannel.ForAddress(new UriBuilder(address) { Scheme = "http" }.Uri);

        var notFound = await Assert.ThrowsAsync<RpcException>(() =>
            new RunService.RunServiceClient(tls).GetRunAsync(new GetRunRequest { RunId = "over-tls" }, deadline: Deadline()).ResponseAsync);
        var cleartext = await Assert.ThrowsAsync<RpcException>(() =>
            new RunService.RunServiceClient(plain).GetRunAsync(new GetRunRequest { RunId = "in-clear" }, deadline: Deadline()).ResponseAsync);

        Assert.Equal("https", address.Scheme);
        Assert.Equal(StatusCode.NotFound, notFound.StatusCode);
        Assert.NotEqual(StatusCode.NotFound, cleartext.StatusCode);
    }

    [Fact]
    public void Validate_TlsCertWithoutKey_SaysBothAreNeeded()
    {
        using var dir = new TempDir();
        var (certFile, _, _) = dir.SelfSignedCertificate();

        var ex = Assert.Throws<ArgumentException>(() => new SchedulerOptions { TlsCert = certFile }.Validate());

        Assert.Contains("TlsCert and TlsKey go together", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_KeyOfAnotherCertificate_NamesBothFilesAtStartup()
    {
        using var dir = new TempDir();
        var (certFile, _, _) = dir.SelfSignedCertificate();
        var (_, otherKey, _) = dir.SelfSignedCertificate("other");

        var ex = Assert.Throws<ArgumentException>(() => new SchedulerOptions { TlsCert = certFile, TlsKey = otherKey }.Validate());

        Assert.Contains($"TlsCert '{certFile}' with TlsKey '{otherKey}' cannot be loaded", ex.Message, StringComparison.Ordinal);
    }

    private static DateTime Deadline() => DateTime.UtcNow + ServiceTestHost.Timeout;

    /// <summary>A store whose reads fail as an unreachable Redis's do while <see cref="Failing"/> is set.</summary>
    public class UnreachableStore : DispatchProxy
    {
        private IRunStore _inner = null!;

        public bool Failing { get; set; }

        public IRunStore Store { get; private set; } = null!;

        public static UnreachableStore Wrap(IRunStore inner)
        {
            var store = Create<IRunStore, UnreachableStore>();
            var proxy = (UnreachableStore)(object)store;
            proxy._inner = inner;
            proxy.Store = store;
            return proxy;
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            if (Failing && targetMethod?.Name == nameof(IRunStore.GetRunAsync))
            {
                return Task.FromException<Run?>(new RunStoreException(RunStoreError.Unavailable, ErrorReason.StoreUnavailable, "the store is down in this test"));
            }

            try
            {
                return targetMethod!.Invoke(_inner, args);
            }
            catch (TargetInvocationException ex) when (ex.InnerException is not null)
            {
                throw ex.InnerException;
            }
        }
    }

    private sealed class TempDir : IDisposable
    {
        private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cp-tls-");

        public (string Cert, string Key, string Thumbprint) SelfSignedCertificate(string name = "scheduler")
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
            var san = new SubjectAlternativeNameBuilder();
            san.AddIpAddress(System.Net.IPAddress.Loopback);
            request.CertificateExtensions.Add(san.Build());
            using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
            var certFile = Path.Combine(_dir.FullName, name + ".pem");
            var keyFile = Path.Combine(_dir.FullName, name + ".key");
            File.WriteAllText(certFile, cert.ExportCertificatePem());
            File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
            return (certFile, keyFile, cert.Thumbprint);
        }

        public void Dispose() => _dir.Delete(recursive: true);
    }
}
