using System.Text;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Google.Protobuf;
using Grpc.Core;
using Xunit;
using static ControlPlane.Scheduler.Tests.ServiceRunServiceTests;
using Kind = ControlPlane.V1.ConnectResponse.MessageOneofCase;
using M = ControlPlane.Scheduler.Tests.ServiceTestHost.Methods;

namespace ControlPlane.Scheduler.Tests;

public sealed class ServiceAgentServiceTests
{
    [Fact]
    public async Task Connect_FirstMessageNotHello_InvalidArgument()
    {
        await using var host = await ServiceTestHost.StartAsync();
        using var call = host.Channel.CreateCallInvoker().AsyncDuplexStreamingCall(M.Connect, null, default);

        await call.RequestStream.WriteAsync(new ConnectRequest { Heartbeat = new Heartbeat() });
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(ServiceTestHost.Timeout));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains("first message of Connect must be hello", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_HelloWithoutAgentId_InvalidArgumentNamingTheField()
    {
        await using var host = await ServiceTestHost.StartAsync();
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, new Hello { Slots = 1 });

        var status = await agent.Ended.WaitAsync(ServiceTestHost.Timeout);

        Assert.Equal(StatusCode.InvalidArgument, status.StatusCode);
        Assert.Equal("hello.agent_id is required", status.Detail);
    }

    [Fact]
    public async Task Connect_HelloWithMoreSlotsThanTheCap_InvalidArgumentNamingTheField()
    {
        await using var host = await ServiceTestHost.StartAsync();
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, new Hello { AgentId = "big", Slots = AgentRegistration.MaxSlots + 1 });

        var status = await agent.Ended.WaitAsync(ServiceTestHost.Timeout);

        Assert.Equal(StatusCode.InvalidArgument, status.StatusCode);
        Assert.StartsWith("hello.slots is 10001", status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_ScriptedAgentRunsThreeLevelDag_OutputsFlowAndSlotsReturnToZero()
    {
        await using var host = await ServiceTestHost.StartAsync();
        var spec = Spec("dag", Shell("a"), Shell("b1", "a"), Shell("b2", "a"), Shell("c", "b1", "b2"));
        spec.Steps[3].KeepOutput = true;
        var run = (await host.Call(M.SubmitRun, new SubmitRunRequest { Spec = spec })).Run;
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("agent-1", slots: 2));

        var welcome = await agent.NextAsync();
        Assert.Equal(Kind.Welcome, welcome.MessageCase);
        Assert.Equal(TimeSpan.FromSeconds(1), welcome.Welcome.HeartbeatInterval.ToTimeSpan());

        // Each step's output is its id plus its inputs, so the last output proves what flowed along the edges.
        var done = 0;
        while (done < 4)
        {
            var assignment = (await agent.NextAsync(Kind.Assignment)).Assignment;
            var inputs = string.Join("+", assignment.Inputs.OrderBy(i => i.StepId, StringComparer.Ordinal).Select(i => i.Data.ToStringUtf8()));
            var produced = inputs.Length == 0 ? assignment.StepId : $"{assignment.StepId}({inputs})";
            await agent.SendAsync(new ConnectRequest { StepStarted = new StepStarted { FencingToken = assignment.FencingToken } });
            await agent.SendAsync(new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = assignment.FencingToken, Output = ByteString.CopyFromUtf8(produced) } });
            done++;
        }

        var final = await host.WaitForRunAsync(run.Id, r => r.State == RunState.Succeeded);
        Assert.All(final.Steps, s => Assert.Equal(1, s.Attempt));
        var output = await host.Call(M.GetStepOutput, new GetStepOutputRequest { RunId = run.Id, StepId = "c" });
        Assert.Equal("c(b1(a)+b2(a))", output.Output.Data.ToStringUtf8());
        var stats = await host.Call(M.GetStats, new GetStatsRequest());
        Assert.All(stats.Slots, s => Assert.Equal(0, s.Used));
    }

    [Fact]
    public async Task Connect_ReportsFromAFencedOffAttempt_ResultRejectedAndStepSucceedsOnce()
    {
        var clock = new ManualTimeProvider();
        await using var host = await ServiceTestHost.StartAsync(clock);
        var run = (await host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("lease", Shell("a")) })).Run;
        await using var slow = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("slow", slots: 1));
        var first = (await slow.NextAsync(Kind.Assignment)).Assignment;
        await slow.SendAsync(new ConnectRequest { StepStarted = new StepStarted { FencingToken = first.FencingToken } });
        await host.WaitForRunAsync(run.Id, r => r.Steps[0].State == StepState.Running);

        // The slow agent stops heartbeating; once its lease is past, the reaper requeues the step for another agent.
        await using var other = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("other", slots: 1));
        Assert.Equal(Kind.Welcome, (await other.NextAsync()).MessageCase);
        clock.Advance(TimeSpan.FromSeconds(11));
        var second = (await other.NextAsync(Kind.Assignment)).Assignment;
        Assert.Equal(2, second.Attempt);
        Assert.True(second.FencingToken > first.FencingToken);

        // The slow agent was told to stop, and its late result is refused by its fencing token.
        var cancel = await slow.NextAsync(Kind.CancelAttempt);
        Assert.Equal(first.FencingToken, cancel.CancelAttempt.FencingToken);
        await slow.SendAsync(new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = first.FencingToken, Output = ByteString.CopyFromUtf8("late") } });
        var rejected = (await slow.NextAsync(Kind.ResultRejected)).ResultRejected;
        Assert.Equal(first.FencingToken, rejected.FencingToken);
        Assert.Contains("stale", rejected.Reason, StringComparison.Ordinal);

        await other.SendAsync(new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = second.FencingToken, Output = ByteString.CopyFromUtf8("on time") } });
        var final = await host.WaitForRunAsync(run.Id, r => r.State == RunState.Succeeded);
        Assert.Equal(1, final.Steps[0].History.Count(h => h.ToState == "STEP_STATE_SUCCEEDED"));
        Assert.Equal("other", final.Steps[0].AgentId);
    }

    [Fact]
    public async Task Connect_ReconnectReannouncingAttempt_KeepsItAndItsResultCounts()
    {
        await using var host = await ServiceTestHost.StartAsync();
        var run = (await host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("reconnect", Shell("a")) })).Run;
        Assignment assignment;
        await using (var before = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("flaky", slots: 1)))
        {
            assignment = (await before.NextAsync(Kind.Assignment)).Assignment;
        }

        var hello = ServiceScriptedAgent.Hello("flaky", slots: 1);
        hello.RunningAttempts.Add(new RunningAttempt { RunId = run.Id, StepId = "a", Attempt = assignment.Attempt, FencingToken = assignment.FencingToken });
        hello.RunningAttempts.Add(new RunningAttempt { RunId = run.Id, StepId = "a", Attempt = 9, FencingToken = 9999 });
        await using var after = await ServiceScriptedAgent.ConnectAsync(host.Channel, hello);

        var welcome = (await after.NextAsync()).Welcome;
        Assert.Equal([9999L], welcome.RevokedFencingTokens);
        await after.SendAsync(new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = assignment.FencingToken, Output = ByteString.CopyFromUtf8("kept") } });
        var final = await host.WaitForRunAsync(run.Id, r => r.State == RunState.Succeeded);
        Assert.Equal(1, final.Steps[0].Attempt);
    }

    [Fact]
    public async Task Connect_UnknownFencingToken_ResultRejected()
    {
        await using var host = await ServiceTestHost.StartAsync();
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("a1", slots: 1));

        await agent.SendAsync(new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = 424242 } });
        var rejected = (await agent.NextAsync(Kind.ResultRejected)).ResultRejected;

        Assert.Equal(424242, rejected.FencingToken);
        Assert.Contains("not an attempt assigned on this stream", rejected.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CancelRun_StepRunningOnAgent_AgentGetsCancelAttemptAndRunEndsCancelled()
    {
        await using var host = await ServiceTestHost.StartAsync();
        var run = (await host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("cancel", Shell("a"), Shell("b", "a")) })).Run;
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("worker", slots: 1));
        var assignment = (await agent.NextAsync(Kind.Assignment)).Assignment;
        await agent.SendAsync(new ConnectRequest { StepStarted = new StepStarted { FencingToken = assignment.FencingToken } });
        await host.WaitForRunAsync(run.Id, r => r.Steps[0].State == StepState.Running);

        await host.Call(M.CancelRun, new CancelRunRequest { RunId = run.Id, Reason = "operator" });
        var cancel = (await agent.NextAsync(Kind.CancelAttempt)).CancelAttempt;
        Assert.Equal(assignment.FencingToken, cancel.FencingToken);
        await agent.SendAsync(new ConnectRequest { StepFailed = new StepFailed { FencingToken = assignment.FencingToken, Cancelled = true, Error = "killed" } });

        var final = await host.WaitForRunAsync(run.Id, r => r.State == RunState.Cancelled);
        Assert.Equal(StepState.Cancelled, final.Steps[1].State);
        var stats = await host.Call(M.GetStats, new GetStatsRequest());
        Assert.All(stats.Slots, s => Assert.Equal(0, s.Used));
    }

    [Fact]
    public async Task DrainAgent_ConnectedAgent_GetsDrainAndNoMoreWork()
    {
        await using var host = await ServiceTestHost.StartAsync();
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("drainee", slots: 1));
        Assert.Equal(Kind.Welcome, (await agent.NextAsync()).MessageCase);

        var drained = await host.Call(M.DrainAgent, new DrainAgentRequest { AgentId = "drainee" });
        var drain = await agent.NextAsync();

        Assert.Equal(AgentState.Draining, drained.Agent.State);
        Assert.Equal(Kind.Drain, drain.MessageCase);
    }

    [Fact]
    public async Task DrainAgent_AgentAnswersSlotsChangedZero_StaysDraining()
    {
        await using var host = await ServiceTestHost.StartAsync();
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("drainee", slots: 2));
        Assert.Equal(Kind.Welcome, (await agent.NextAsync()).MessageCase);
        await host.Call(M.DrainAgent, new DrainAgentRequest { AgentId = "drainee" });
        Assert.Equal(Kind.Drain, (await agent.NextAsync()).MessageCase);

        // A draining agent gives its slots back, as the agent library does. The slot change re-registers the agent
        // (connected) and then marks it draining again, two store calls: wait for both, or time out if the second never comes.
        await agent.SendAsync(new ConnectRequest { SlotsChanged = new SlotsChanged { Slots = 0 } });
        using var timeout = new CancellationTokenSource(ServiceTestHost.Timeout);
        V1.Agent listed;
        do
        {
            await Task.Delay(20, timeout.Token);
            listed = (await host.Call(M.ListAgents, new ListAgentsRequest())).Agents.Single(a => a.AgentId == "drainee");
        }
        while (listed.Slots != 0 || listed.State != AgentState.Draining);

        Assert.Equal(0, listed.Slots);
    }

    [Fact]
    public async Task StopAsync_AgentConnected_StreamEndsUnavailableSoTheAgentReconnects()
    {
        var host = await ServiceTestHost.StartAsync();
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("leaver", slots: 1));
        Assert.Equal(Kind.Welcome, (await agent.NextAsync()).MessageCase);

        await host.Server.StopAsync();
        var status = await agent.Ended.WaitAsync(ServiceTestHost.Timeout);

        Assert.True(status.StatusCode == StatusCode.Unavailable, $"the agent's stream ended with {status}, not UNAVAILABLE; {status.DebugException}");
        Assert.Contains("shutting down", status.Detail, StringComparison.Ordinal);
        await host.DisposeAsync();
    }
}
