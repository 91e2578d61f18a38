using ControlPlane.V1;
using Google.Protobuf;
using Xunit;
using static ControlPlane.Scheduler.Tests.ServiceRunServiceTests;
using Kind = ControlPlane.V1.ConnectResponse.MessageOneofCase;
using M = ControlPlane.Scheduler.Tests.ServiceTestHost.Methods;

namespace ControlPlane.Scheduler.Tests;

/// <summary>
/// An agent session owns its attempts: over real Connect streams, a report that carries the right fencing token is
/// refused when it comes from another agent, or from a stream of the same agent that a reconnect superseded.
/// </summary>
public sealed class ServiceAgentIdentityTests
{
    [Fact]
    public async Task Connect_AnotherAgentReportsAForgedOutputWithTheAttemptsToken_ResultRejectedAndTheOwnersOutputCounts()
    {
        await using var host = await ServiceTestHost.StartAsync(configure: LongLease);
        var run = await SubmitAsync(host);
        await using var owner = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("agent-1", slots: 1));
        var assignment = await StartAsync(host, owner, run);

        // agent-2 learned the run, the step and the token, and names the attempt as its own in Hello.
        var hello = ServiceScriptedAgent.Hello("agent-2", slots: 1);
        hello.RunningAttempts.Add(new RunningAttempt { RunId = run.Id, StepId = "a", Attempt = assignment.Attempt, FencingToken = assignment.FencingToken });
        await using var intruder = await ServiceScriptedAgent.ConnectAsync(host.Channel, hello);
        var welcome = (await intruder.NextAsync(Kind.Welcome)).Welcome;
        await intruder.SendAsync(Completed(assignment, "forged"));
        var rejected = (await intruder.NextAsync(Kind.ResultRejected)).ResultRejected;
        var between = (await host.Call(M.GetRun, new GetRunRequest { RunId = run.Id })).Run;
        await owner.SendAsync(Completed(assignment, "real"));
        var final = await host.WaitForRunAsync(run.Id, r => r.State == RunState.Succeeded);

        Assert.Equal([assignment.FencingToken], welcome.RevokedFencingTokens);
        Assert.Equal(assignment.FencingToken, rejected.FencingToken);
        Assert.Contains("another agent session", rejected.Reason, StringComparison.Ordinal);
        Assert.Equal(StepState.Running, between.Steps[0].State);
        Assert.Equal("agent-1", final.Steps[0].AgentId);
        Assert.Single(final.Steps[0].History, h => h.ToState == "STEP_STATE_SUCCEEDED");
        Assert.Equal("real", (await host.Call(M.GetStepOutput, new GetStepOutputRequest { RunId = run.Id, StepId = "a" })).Output.Data.ToStringUtf8());
    }

    [Fact]
    public async Task Connect_SupersededStreamOnAnotherReplicaReportsAfterTheReconnect_RefusedAndTheNewStreamsOutputCounts()
    {
        await using var host = await ServiceTestHost.StartAsync(configure: LongLease);
        await using var replica = await host.StartReplicaAsync();
        var run = await SubmitAsync(host);
        await using var old = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("agent-1", slots: 1));
        var assignment = await StartAsync(host, old, run);

        // agent-1 reconnects to the other replica and re-announces the attempt; the first replica never hears of it,
        // so the old stream stays open there.
        var hello = ServiceScriptedAgent.Hello("agent-1", slots: 1);
        hello.RunningAttempts.Add(new RunningAttempt { RunId = run.Id, StepId = "a", Attempt = assignment.Attempt, FencingToken = assignment.FencingToken });
        await using var current = await ServiceScriptedAgent.ConnectAsync(replica.Channel, hello);
        var welcome = (await current.NextAsync(Kind.Welcome)).Welcome;
        await old.SendAsync(new ConnectRequest { Heartbeat = new Heartbeat { Sequence = 1, FencingTokens = { assignment.FencingToken } } });
        var cancel = (await old.NextAsync(Kind.CancelAttempt)).CancelAttempt;
        await old.SendAsync(Completed(assignment, "from the old stream"));
        var rejected = (await old.NextAsync(Kind.ResultRejected)).ResultRejected;
        var between = (await host.Call(M.GetRun, new GetRunRequest { RunId = run.Id })).Run;
        await current.SendAsync(Completed(assignment, "real"));
        var final = await host.WaitForRunAsync(run.Id, r => r.State == RunState.Succeeded);

        Assert.Empty(welcome.RevokedFencingTokens);
        Assert.Equal(assignment.FencingToken, cancel.FencingToken);
        Assert.Equal(assignment.FencingToken, rejected.FencingToken);
        Assert.Contains("another agent session", rejected.Reason, StringComparison.Ordinal);
        Assert.Equal(StepState.Running, between.Steps[0].State);
        Assert.Single(final.Steps[0].History, h => h.ToState == "STEP_STATE_SUCCEEDED");
        Assert.Equal("real", (await host.Call(M.GetStepOutput, new GetStepOutputRequest { RunId = run.Id, StepId = "a" })).Output.Data.ToStringUtf8());
    }

    // The scripted agents do not heartbeat: no lease may run out while a test runs, so that every CancelAttempt and
    // refusal a stream gets comes from what it sent.
    private static void LongLease(SchedulerOptions options) => options.LeaseDuration = TimeSpan.FromMinutes(5);

    private static async Task<Run> SubmitAsync(ServiceTestHost host)
    {
        var spec = Spec("identity", Shell("a"));
        spec.Steps[0].KeepOutput = true;
        return (await host.Call(M.SubmitRun, new SubmitRunRequest { Spec = spec })).Run;
    }

    private static async Task<Assignment> StartAsync(ServiceTestHost host, ServiceScriptedAgent agent, Run run)
    {
        var assignment = (await agent.NextAsync(Kind.Assignment)).Assignment;
        await agent.SendAsync(new ConnectRequest { StepStarted = new StepStarted { FencingToken = assignment.FencingToken } });
        await host.WaitForRunAsync(run.Id, r => r.Steps[0].State == StepState.Running);
        return assignment;
    }

    private static ConnectRequest Completed(Assignment assignment, string output) =>
        new() { StepCompleted = new StepCompleted { FencingToken = assignment.FencingToken, Output = ByteString.CopyFromUtf8(output) } };
}
