using System.Security.Cryptography;
using System.Text;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Grpc.Core;
using StackExchange.Redis;
using Xunit;
using static ControlPlane.FunctionalTests.FunctionalSpecs;

namespace ControlPlane.FunctionalTests;

/// <summary>
/// Secrets end to end with real processes and a real Redis: set by cpctl, used by a shell step that prints it to stdout
/// and stderr and fails with it, then looked for in every API response, every Redis value and the processes' logs.
/// </summary>
[Collection(FunctionalTestGroup.Name)]
public sealed class SecretsTests(RedisServerFixture redis)
{
    private const string Admin = "cpt_functional-admin-secrets-0123456789";

    [Fact]
    public async Task StepPrintsAndFailsWithItsSecret_ValueInNoResponseRedisValueOrLog()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        var value = "pw-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        await using var cluster = await FunctionalCluster.StartWithSecretsKeyAsync(redis, Admin, key);
        var admin = new Dictionary<string, string> { ["CP_TOKEN"] = Admin };
        var valueFile = cluster.Path2("db-password.txt");
        await File.WriteAllTextAsync(valueFile, value);
        var set = await cluster.CpctlAsync(admin, "secret", "set", "db-password", "--from-file", valueFile);
        Assert.True(set.ExitCode == 0, set.Error);
        var agentToken = await cluster.CpctlAsync(admin, "auth", "token", "create", "--role", "agent", "--agent-id", "agent-1", "--name", "agent-1");
        Assert.True(agentToken.ExitCode == 0, agentToken.Error);
        await cluster.StartAgentAsync("agent-1", slots: 1, tokenFile: cluster.WriteSecret("agent-1.token", agentToken.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]));

        // Attempt 1 prints the secret on both streams and fails with it in its error; attempt 2 prints it again and
        // writes it into its output.
        var step = Shell("use", """
            echo "stdout has $DB_PASSWORD"
            echo "stderr has $DB_PASSWORD" >&2
            echo "::cp progress 50 halfway with $DB_PASSWORD"
            if [ "$CP_ATTEMPT" = 1 ]; then echo "login failed for $DB_PASSWORD" >&2; exit 3; fi
            printf '{"password":"%s"}' "$DB_PASSWORD" > "$CP_OUTPUT_FILE"
            """).WithRetry(2, TimeSpan.FromMilliseconds(100));
        step.Secrets.Add("db-password");
        step.KeepOutput = true;
        var run = (await cluster.Client.SubmitRunAsync(Spec("secrets", step))).Run;
        var done = await cluster.WaitForStateAsync(run.Id, RunState.Succeeded);

        var use = FunctionalCluster.StepOf(done, "use");
        Assert.Equal(2, use.Attempt);
        Assert.Contains(use.History, h => h.Reason.Contains("***", StringComparison.Ordinal));
        var events = new List<RunEvent>();
        using (var watch = new CancellationTokenSource(FunctionalCluster.Timeout))
        {
            // The run is over: the watch replays every event and ends.
            await foreach (var e in cluster.Client.WatchRunAsync(run.Id, cancellationToken: watch.Token))
            {
                events.Add(e);
            }
        }

        var output = await cluster.Client.GetStepOutputAsync(run.Id, "use");
        var secrets = await cluster.Client.ListSecretsAsync();

        Assert.Contains(events, e => e.ToString().Contains("stdout has ***", StringComparison.Ordinal));
        Assert.Contains(events, e => e.ToString().Contains("stderr has ***", StringComparison.Ordinal));
        Assert.Equal("{\"password\":\"***\"}", output.Data.ToStringUtf8());
        foreach (var (what, text) in new[]
        {
            ("GetRun", (await cluster.Client.GetRunAsync(run.Id)).ToString()),
            ("WatchRun events", string.Join("\n", events.Select(e => e.ToString()))),
            ("GetStepOutput", output.ToString()),
            ("ListSecrets", string.Join("\n", secrets.Select(s => s.ToString()))),
            ("the scheduler's log", cluster.Scheduler.Output),
            ("the agent's log", cluster.Agents["agent-1"].Output),
            ("cpctl secret set", set.Out + set.Error),
        })
        {
            Assert.False(text.Contains(value, StringComparison.Ordinal), $"{what} holds the secret value");
        }

        // Every key of the whole keyspace, read by its type: no value holds the plaintext.
        using var connection = await ConnectionMultiplexer.ConnectAsync(redis.Configuration + ",allowAdmin=true");
        var db = connection.GetDatabase();
        var needle = Encoding.UTF8.GetBytes(value);
        var scanned = 0;
        foreach (var redisKey in connection.GetServer(connection.GetEndPoints()[0]).Keys(pattern: "*", pageSize: 500))
        {
            scanned++;
            foreach (var bytes in await ReadAllAsync(db, redisKey))
            {
                Assert.False(bytes.AsSpan().IndexOf(needle) >= 0, $"Redis key {redisKey} holds the secret value");
            }
        }

        Assert.True(scanned > 0);

        // The stored value is sealed: not the plaintext, and it opens with the key and "namespace/name" as associated data only.
        var sealedValue = (byte[])(await db.HashGetAsync($"cp:{{{cluster.Namespace}}}:secret:db-password", "v"))!;
        Assert.Equal(value, Encoding.UTF8.GetString(Open(key, $"{cluster.Namespace}/db-password", sealedValue)));
        Assert.ThrowsAny<CryptographicException>(() => Open(RandomNumberGenerator.GetBytes(32), $"{cluster.Namespace}/db-password", sealedValue));
        Assert.ThrowsAny<CryptographicException>(() => Open(key, $"{cluster.Namespace}/other-name", sealedValue));
        Assert.ThrowsAny<CryptographicException>(() => Open(key, "another-namespace/db-password", sealedValue));
    }

    [Fact]
    public async Task SecretLimitedToQueues_StepOnAnotherQueue_RefusedAtSubmit()
    {
        await using var cluster = await FunctionalCluster.StartWithSecretsKeyAsync(redis, Admin, RandomNumberGenerator.GetBytes(32));
        var set = await cluster.CpctlAsync(
            new Dictionary<string, string> { ["CP_TOKEN"] = Admin },
            "secret", "set", "deploy-key", "--from-file", cluster.WriteSecret("deploy-key.txt", "k"), "--queues", "deploy,release");
        Assert.True(set.ExitCode == 0, set.Error);
        var ls = await cluster.CpctlAsync(new Dictionary<string, string> { ["CP_TOKEN"] = Admin }, "secret", "ls");
        var step = Shell("build", "true");
        step.Queue = "build";
        step.Secrets.Add("deploy-key");

        var ex = await Assert.ThrowsAsync<RpcException>(() => cluster.Client.SubmitRunAsync(Spec("wrong-queue", step)));

        Assert.Contains("deploy-key", ls.Out, StringComparison.Ordinal);
        Assert.Contains("deploy,release", ls.Out, StringComparison.Ordinal);
        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        var violation = Assert.Single(ex.GetRpcStatus()!.GetDetail<Google.Rpc.BadRequest>().FieldViolations);
        Assert.Equal("steps[0].secrets[0]", violation.Field);
        Assert.Contains("limited to queues deploy, release", violation.Description, StringComparison.Ordinal);
    }

    private static byte[] Open(byte[] key, string associatedData, byte[] sealedValue)
    {
        using var aes = new AesGcm(key, 16);
        var plain = new byte[sealedValue.Length - 28];
        aes.Decrypt(sealedValue.AsSpan(0, 12), sealedValue.AsSpan(28), sealedValue.AsSpan(12, 16), plain, Encoding.UTF8.GetBytes(associatedData));
        return plain;
    }

    /// <summary>Every byte string stored under <paramref name="key"/>, whatever its type: members, fields, values, stream entries.</summary>
    private static async Task<List<byte[]>> ReadAllAsync(IDatabase db, RedisKey key)
    {
        var found = new List<byte[]> { (byte[])key! };
        void Add(RedisValue v)
        {
            if (!v.IsNull)
            {
                found.Add((byte[])v!);
            }
        }

        switch (await db.KeyTypeAsync(key))
        {
            case RedisType.String:
                Add(await db.StringGetAsync(key));
                break;
            case RedisType.Hash:
                foreach (var e in await db.HashGetAllAsync(key))
                {
                    Add(e.Name);
                    Add(e.Value);
                }

                break;
            case RedisType.List:
                foreach (var v in await db.ListRangeAsync(key))
                {
                    Add(v);
                }

                break;
            case RedisType.Set:
                foreach (var v in await db.SetMembersAsync(key))
                {
                    Add(v);
                }

                break;
            case RedisType.SortedSet:
                foreach (var e in await db.SortedSetRangeByRankWithScoresAsync(key))
                {
                    Add(e.Element);
                }

                break;
            case RedisType.Stream:
                foreach (var entry in await db.StreamRangeAsync(key))
                {
                    Add(entry.Id);
                    foreach (var v in entry.Values)
                    {
                        Add(v.Name);
                        Add(v.Value);
                    }
                }

                break;
            case RedisType.None:
                break;
            default:
                throw new Xunit.Sdk.XunitException($"Redis key {key} has a type the scan does not read");
        }

        return found;
    }
}
