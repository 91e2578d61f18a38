using System.Security.Cryptography;
using System.Text;
using ControlPlane.Scheduler.Security;
using ControlPlane.V1;
using Google.Protobuf;
using Grpc.Core;
using Xunit;
using Kind = ControlPlane.V1.ConnectResponse.MessageOneofCase;

namespace ControlPlane.Scheduler.Tests;

/// <summary>SecretService over a real channel (embedded store), the submit checks and the claim-time delivery.</summary>
public sealed class ServiceSecretTests
{
    private static SecretService.SecretServiceClient Secrets(ServiceTestHost host) => new(host.Channel);

    private static RunService.RunServiceClient Runs(ServiceTestHost host) => new(host.Channel);

    private static SetSecretRequest Set(string name, string value, params string[] queues) =>
        new() { Name = name, Value = ByteString.CopyFromUtf8(value), Queues = { queues } };

    [Fact]
    public async Task SetListDelete_ListNeverCarriesTheValue()
    {
        await using var host = await ServiceTestHost.StartAsync();
        var client = Secrets(host);

        var first = await client.SetSecretAsync(Set("db-password", "hunter2-value", "deploy"));
        var again = await client.SetSecretAsync(Set("db-password", "hunter3-value", "deploy", "build"));
        var list = await client.ListSecretsAsync(new ListSecretsRequest());

        Assert.False(first.Replaced);
        Assert.True(again.Replaced);
        Assert.Equal(first.Info.CreatedAt, again.Info.CreatedAt);
        var info = Assert.Single(list.Secrets);
        Assert.Equal(["build", "deploy"], info.Queues);
        Assert.DoesNotContain("hunter", list.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("hunter", again.ToString(), StringComparison.Ordinal);

        var deleted = await client.DeleteSecretAsync(new DeleteSecretRequest { Name = "db-password" });
        Assert.Equal("db-password", deleted.Info.Name);
        Assert.Empty((await client.ListSecretsAsync(new ListSecretsRequest())).Secrets);
        var missing = await Assert.ThrowsAsync<RpcException>(() => client.DeleteSecretAsync(new DeleteSecretRequest { Name = "db-password" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
    }

    [Theory]
    [InlineData("Bad-Name", "x", "name")]
    [InlineData("", "x", "name")]
    [InlineData("cp-token", "x", "name")]
    [InlineData("ok", "", "value")]
    [InlineData("ok", "nul\0inside", "value")]
    public async Task SetSecret_BadInput_InvalidArgumentWithField(string name, string value, string field)
    {
        await using var host = await ServiceTestHost.StartAsync();

        var ex = await Assert.ThrowsAsync<RpcException>(() => Secrets(host).SetSecretAsync(Set(name, value)).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains(ex.GetRpcStatus()!.GetDetail<Google.Rpc.BadRequest>().FieldViolations, v => v.Field == field);
    }

    [Fact]
    public async Task SetSecret_TooLargeOrBadQueue_InvalidArgumentWithField()
    {
        await using var host = await ServiceTestHost.StartAsync();
        var request = new SetSecretRequest { Name = "big", Value = ByteString.CopyFrom(new byte[(60 * 1024) + 1]), Queues = { "ok", "Not A Queue" } };

        var ex = await Assert.ThrowsAsync<RpcException>(() => Secrets(host).SetSecretAsync(request).ResponseAsync);

        var fields = ex.GetRpcStatus()!.GetDetail<Google.Rpc.BadRequest>().FieldViolations.Select(v => v.Field).ToList();
        Assert.Contains("value", fields);
        Assert.Contains("queues[1]", fields);
    }

    [Fact]
    public async Task SetSecret_SharedStoreWithoutKey_FailedPreconditionSaysHowToConfigure()
    {
        var options = new SchedulerOptions { Listen = "127.0.0.1:0" };
        await using var server = new SchedulerServer(options, new EmbeddedRunStore(options.CreateStoreOptions())) { SecretStores = _ => new SharedStandIn() };
        await server.StartAsync();
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(server.Addresses[0].ToString());

        var ex = await Assert.ThrowsAsync<RpcException>(() => new SecretService.SecretServiceClient(channel).SetSecretAsync(Set("db-password", "v")).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Contains("--secrets-key-file", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SubmitRun_UnknownSecretOrQueueNotAllowed_InvalidArgumentWithFieldPath()
    {
        await using var host = await ServiceTestHost.StartAsync();
        await Secrets(host).SetSecretAsync(Set("deploy-key", "v", "deploy"));
        var spec = Specs.Run(
            Specs.Shell("a").With(s => s.Secrets.Add("nope")),
            Specs.Shell("b").With(s => { s.Queue = "build"; s.Secrets.Add("deploy-key"); }),
            Specs.Shell("c").With(s => { s.Queue = "deploy"; s.Secrets.Add("deploy-key"); }));

        var ex = await Assert.ThrowsAsync<RpcException>(() => Runs(host).SubmitRunAsync(new SubmitRunRequest { Spec = spec }).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        var fields = ex.GetRpcStatus()!.GetDetail<Google.Rpc.BadRequest>().FieldViolations.Select(v => v.Field).ToList();
        Assert.Equal(["steps[0].secrets[0]", "steps[1].secrets[0]"], fields);
        Assert.Empty((await Runs(host).ListRunsAsync(new ListRunsRequest())).Runs);
    }

    [Fact]
    public async Task SubmitRun_SecretNamedTwiceOrOnAGate_InvalidArgument()
    {
        await using var host = await ServiceTestHost.StartAsync();
        await Secrets(host).SetSecretAsync(Set("a-b", "v"));
        await Secrets(host).SetSecretAsync(Set("a.b", "v"));
        var spec = Specs.Run(Specs.Shell("a").With(s => s.Secrets.Add(["a-b", "a.b"])), Specs.Gate("g").With(s => s.Secrets.Add("a-b")));

        var ex = await Assert.ThrowsAsync<RpcException>(() => Runs(host).SubmitRunAsync(new SubmitRunRequest { Spec = spec }).ResponseAsync);

        var fields = ex.GetRpcStatus()!.GetDetail<Google.Rpc.BadRequest>().FieldViolations.Select(v => v.Field).ToList();
        Assert.Contains("steps[0].secrets[1]", fields);
        Assert.Contains("steps[1].secrets", fields);
    }

    [Fact]
    public async Task Assignment_CarriesTheValues_GetRunAndEventsDoNot()
    {
        await using var host = await ServiceTestHost.StartAsync();
        await Secrets(host).SetSecretAsync(Set("db-password", "s3cr3t-value"));
        var run = (await Runs(host).SubmitRunAsync(new SubmitRunRequest { Spec = Specs.Run(Specs.Shell("a").With(s => s.Secrets.Add("db-password"))) })).Run;
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("agent-1"));

        var assignment = (await agent.NextAsync(Kind.Assignment)).Assignment;

        Assert.Equal("s3cr3t-value", assignment.Secrets["db-password"].ToStringUtf8());
        var got = await Runs(host).GetRunAsync(new GetRunRequest { RunId = run.Id });
        Assert.DoesNotContain("s3cr3t", got.ToString(), StringComparison.Ordinal);
        Assert.Equal(["db-password"], got.Run.Spec.Steps[0].Secrets);
    }

    [Fact]
    public async Task Assignment_SecretDeletedAfterSubmit_SentWithoutIt()
    {
        await using var host = await ServiceTestHost.StartAsync();
        await Secrets(host).SetSecretAsync(Set("db-password", "s3cr3t-value"));
        await Runs(host).SubmitRunAsync(new SubmitRunRequest { Spec = Specs.Run(Specs.Shell("a").With(s => s.Secrets.Add("db-password"))) });
        await Secrets(host).DeleteSecretAsync(new DeleteSecretRequest { Name = "db-password" });
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("agent-1"));

        var assignment = (await agent.NextAsync(Kind.Assignment)).Assignment;

        Assert.Empty(assignment.Secrets);
        Assert.Equal(["db-password"], assignment.Spec.Secrets);
    }

    [Fact]
    public void Cipher_SealsWithANoncePerWrite_OpensOnlyWithKeyAndName()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        using var cipher = new SecretCipher(key);
        using var other = new SecretCipher(RandomNumberGenerator.GetBytes(32));
        var value = Encoding.UTF8.GetBytes("s3cr3t-value");

        var one = cipher.Seal("db", value);
        var two = cipher.Seal("db", value);

        Assert.NotEqual(one, two);
        Assert.Equal(-1, one.AsSpan().IndexOf(value));
        Assert.Equal(value, cipher.Open("db", one));
        Assert.ThrowsAny<CryptographicException>(() => other.Open("db", one));
        Assert.ThrowsAny<CryptographicException>(() => cipher.Open("other-name", one));
    }

    [Fact]
    public void KeyFile_RawOrBase64_WrongSizeSaysHowToMakeOne()
    {
        var dir = Directory.CreateTempSubdirectory("cp-key-");
        try
        {
            var key = RandomNumberGenerator.GetBytes(32);
            var raw = Path.Combine(dir.FullName, "raw");
            var text = Path.Combine(dir.FullName, "b64");
            var shortKey = Path.Combine(dir.FullName, "short");
            File.WriteAllBytes(raw, key);
            File.WriteAllText(text, Convert.ToBase64String(key) + "\n");
            File.WriteAllText(shortKey, Convert.ToBase64String(key[..16]));

            Assert.Equal(key, SecretCipher.ReadKeyFile(raw));
            Assert.Equal(key, SecretCipher.ReadKeyFile(text));
            var ex = Assert.Throws<ArgumentException>(() => new SchedulerOptions { SecretsKeyFile = shortKey }.Validate());
            Assert.Contains("decode to 16 bytes", ex.Message, StringComparison.Ordinal);
            Assert.Contains("openssl rand -base64 32", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>A store that is not the in-process one, as Redis is: no key is made up for it.</summary>
    private sealed class SharedStandIn : ISecretStore
    {
        private readonly EmbeddedSecretStore _inner = new();

        public Task<(SecretRecord Stored, bool Replaced)> PutSecretAsync(SecretRecord secret, CancellationToken cancellationToken) => _inner.PutSecretAsync(secret, cancellationToken);

        public Task<IReadOnlyDictionary<string, SecretRecord>> GetSecretsAsync(IReadOnlyCollection<string> names, CancellationToken cancellationToken) => _inner.GetSecretsAsync(names, cancellationToken);

        public Task<IReadOnlyList<SecretRecord>> ListSecretsAsync(CancellationToken cancellationToken) => _inner.ListSecretsAsync(cancellationToken);

        public Task<SecretRecord?> DeleteSecretAsync(string name, CancellationToken cancellationToken) => _inner.DeleteSecretAsync(name, cancellationToken);
    }
}
