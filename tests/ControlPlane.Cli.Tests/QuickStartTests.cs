using System.Text.Json;
using ControlPlane.Tests.Support;
using Xunit;

namespace ControlPlane.Cli.Tests;

/// <summary>
/// The README's quick start, command for command: a real Redis, <c>cpctl server --redis</c>, two
/// <c>cpctl agent</c>s, <c>cpctl run submit examples/batch-resume.yaml</c>, kill -9 the agent running
/// the step, and watch it resume on the other agent from its last checkpoint.
/// </summary>
public sealed class QuickStartTests : IClassFixture<RedisServerFixture>
{
    private readonly RedisServerFixture _redis;

    public QuickStartTests(RedisServerFixture redis) => _redis = redis;

    [Fact]
    public async Task BatchResume_AgentKilledMidStep_ResumesOnTheOtherAgentFromItsCheckpoint()
    {
        // A short lease keeps the test quick; the README's default is 30 s.
        var env = new Dictionary<string, string> { ["CP_LEASE_DURATION"] = "3s", ["CP_HEARTBEAT_INTERVAL"] = "1s" };
        await using var server = CpctlProcess.Start("cpctl.dll", ["server", "--listen", "127.0.0.1:0", "--redis", _redis.Configuration], environment: env);
        var address = await server.WaitForListeningAsync(CpctlProcess.Timeout);
        var agents = new Dictionary<string, ObservedProcess>(StringComparer.Ordinal);
        try
        {
            foreach (var id in new[] { "agent-1", "agent-2" })
            {
                agents[id] = CpctlProcess.Cpctl("agent", "--scheduler", address, "--agent-id", id, "--slots", "4");
                await agents[id].WaitForLineAsync(l => l.StartsWith($"agent {id} connecting", StringComparison.Ordinal), CpctlProcess.Timeout, "that it is connecting");
            }

            var pipeline = Path.Combine(TestEnvironment.RepositoryRoot, "examples", "batch-resume.yaml");
            var submit = await CpctlProcess.RunAsync("run", "submit", pipeline, "--scheduler", address, "-o", "json");
            Assert.True(submit.ExitCode == 0, submit.Out + submit.Error);
            var runId = JsonDocument.Parse(submit.Out).RootElement.GetProperty("run").GetProperty("id").GetString()!;
            await using var watch = CpctlProcess.Cpctl("run", "watch", runId, "--scheduler", address);

            // Kill the agent running "batches" once the step has checkpointed.
            var first = await WaitForStepAsync(address, runId, s => Bool(s, "hasCheckpoint") && Text(s, "state") == "STEP_STATE_RUNNING");
            var victim = Text(first, "agentId");
            await agents[victim].SignalAsync("KILL");
            await agents[victim].Exited.WaitAsync(CpctlProcess.Timeout);

            Assert.Equal(0, await watch.Exited.WaitAsync(CpctlProcess.Timeout));
            var output = await CpctlProcess.RunAsync("run", "output", runId, "batches", "--scheduler", address);
            var final = await WaitForStepAsync(address, runId, s => Text(s, "state") == "STEP_STATE_SUCCEEDED");

            Assert.NotEqual(victim, Text(final, "agentId"));
            Assert.Equal(2, final.GetProperty("attempt").GetInt32());
            Assert.Contains("resuming after batch", watch.StandardOutput, StringComparison.Ordinal);
            // The step's own output says where attempt 2 started: after the checkpointed batch, not at 1.
            Assert.Matches(@"processed batches ([2-9]|1[0-9]|20)\.\.20 in attempt 2", output.Out);
        }
        finally
        {
            foreach (var agent in agents.Values)
            {
                await agent.DisposeAsync();
            }
        }
    }

    private static async Task<JsonElement> WaitForStepAsync(string address, string runId, Func<JsonElement, bool> predicate)
    {
        using var timeout = new CancellationTokenSource(CpctlProcess.Timeout);
        while (true)
        {
            var get = await CpctlProcess.RunAsync("run", "get", runId, "--scheduler", address, "-o", "json");
            Assert.True(get.ExitCode == 0, get.Out + get.Error);
            var step = JsonDocument.Parse(get.Out).RootElement.GetProperty("run").GetProperty("steps")[0].Clone();
            if (predicate(step))
            {
                return step;
            }

            // Each cpctl call is a process start, so this loop is paced by that; the timeout fails the test.
            if (timeout.IsCancellationRequested)
            {
                throw new TimeoutException($"step never matched; last seen: {step}");
            }
        }
    }

    // Protobuf JSON leaves out fields at their default value.
    private static string Text(JsonElement step, string name) => step.TryGetProperty(name, out var value) ? value.GetString() ?? "" : "";

    private static bool Bool(JsonElement step, string name) => step.TryGetProperty(name, out var value) && value.GetBoolean();
}
