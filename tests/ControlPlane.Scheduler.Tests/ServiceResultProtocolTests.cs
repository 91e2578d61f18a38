using ControlPlane.V1;
using Google.Protobuf;
using Xunit;
using static ControlPlane.Scheduler.Tests.ServiceRunServiceTests;
using Kind = ControlPlane.V1.ConnectResponse.MessageOneofCase;
using M = ControlPlane.Scheduler.Tests.ServiceTestHost.Methods;

namespace ControlPlane.Scheduler.Tests;

/// <summary>Results acknowledged once stored, a store outage that delays instead of refusing, and declined assignments.</summary>
public sealed class ServiceResultProtocolTests
{
    [Fact]
    public async Task Connect_Welcome_SaysResultsAreAcknowledgedAndDeclinesAccepted()
    {
        await using var host = await ServiceTestHost.StartAsync();
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("agent-1", slots: 1));

        var welcome = (await agent.NextAsync(Kind.Welcome)).Welcome;

        Assert.True(welcome.AcknowledgesResults);
        Assert.True(welcome.AcceptsDeclines);
        Assert.True(welcome.AcknowledgesHeartbeats);
    }

    [Fact]
    public async Task Connect_ManyReportsForOneUnknownAttempt_RefusedOnce()
    {
        await using var host = await ServiceTestHost.StartAsync();
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("agent-1", slots: 1));
        await agent.NextAsync(Kind.Welcome);
        var batch = new ReportBatch();
        for (var i = 0; i < 50; i++)
        {
            batch.Reports.Add(new ConnectRequest { StepLog = new StepLog { FencingToken = 42, Lines = { $"line {i}" } } });
        }

        await agent.SendAsync(new ConnectRequest { ReportBatch = batch });
        await agent.SendAsync(new ConnectRequest { StepFailed = new StepFailed { FencingToken = 43, Error = "x" } });
        var seen = new List<ConnectResponse>();
        while (true)
        {
            var next = await agent.NextAsync(Kind.ResultRejected, seen);
            seen.Add(next);
            if (next.ResultRejected.FencingToken == 43)
            {
                break;
            }
        }

        Assert.Equal([42L, 43L], seen.Where(m => m.MessageCase == Kind.ResultRejected).Select(m => m.ResultRejected.FencingToken));
    }

    [Fact]
    public async Task Connect_Heartbeats_AcceptedOnlyWhenTheStoreRenewedTheirLeases()
    {
        ServiceReportPipelineTests.OutageStore outage = null!;
        await using var host = await ServiceTestHost.StartAsync(wrapStore: s => ServiceReportPipelineTests.OutageStore.Create(s, out outage));
        await host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("beats", Shell("a")) });
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("agent-1", slots: 1));
        var assignment = (await agent.NextAsync(Kind.Assignment)).Assignment;
        Heartbeat Beat(long sequence) => new() { FencingTokens = { assignment.FencingToken }, Sequence = sequence };

        await agent.SendAsync(new ConnectRequest { Heartbeat = Beat(1) });
        var first = (await agent.NextAsync(Kind.HeartbeatAccepted)).HeartbeatAccepted;
        outage.FailRenewals = true;
        await agent.SendAsync(new ConnectRequest { Heartbeat = Beat(2) });
        await outage.RenewalFailed.Task.WaitAsync(ServiceTestHost.Timeout);
        outage.FailRenewals = false;
        await agent.SendAsync(new ConnectRequest { Heartbeat = Beat(3) });
        var skipped = new List<ConnectResponse>();
        var third = (await agent.NextAsync(Kind.HeartbeatAccepted, skipped)).HeartbeatAccepted;

        Assert.Equal(1, first.Sequence);
        Assert.Equal(3, third.Sequence);
        Assert.DoesNotContain(skipped, m => m.MessageCase == Kind.HeartbeatAccepted);
    }

    [Fact]
    public async Task Connect_StoreUnreachableWhenTheResultArrives_NotRefusedAndAcknowledgedOnceStored()
    {
        ServiceReportPipelineTests.OutageStore outage = null!;
        await using var host = await ServiceTestHost.StartAsync(wrapStore: s => ServiceReportPipelineTests.OutageStore.Create(s, out outage));
        var run = (await host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("outage", Shell("a")) })).Run;
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("agent-1", slots: 1));
        var assignment = (await agent.NextAsync(Kind.Assignment)).Assignment;

        // More failed tries than the pipeline ever made before refusing; then the store is back.
        outage.FailReports = int.MaxValue;
        outage.SignalAfterFailures = 6;
        await agent.SendAsync(new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = assignment.FencingToken, Output = ByteString.CopyFromUtf8("kept") } });
        await outage.Failed.Task.WaitAsync(ServiceTestHost.Timeout);
        outage.FailReports = 0;
        var skipped = new List<ConnectResponse>();
        var accepted = (await agent.NextAsync(Kind.ResultsAccepted, skipped)).ResultsAccepted;

        Assert.DoesNotContain(skipped, m => m.MessageCase == Kind.ResultRejected);
        Assert.Equal([assignment.FencingToken], accepted.FencingTokens);
        var final = await host.WaitForRunAsync(run.Id, r => r.State == RunState.Succeeded);
        Assert.Equal(1, final.Steps[0].Attempt);
    }

    [Fact]
    public async Task Connect_AgentDeclinesAnAssignment_StepRunsAtAttemptOneOnAnotherAgent()
    {
        await using var host = await ServiceTestHost.StartAsync();
        var spec = Spec("decline", Shell("a"));
        spec.Steps[0].Retry = new RetryPolicy { MaxAttempts = 1 };
        var run = (await host.Call(M.SubmitRun, new SubmitRunRequest { Spec = spec })).Run;
        await using var busy = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("busy", slots: 1));
        var declined = (await busy.NextAsync(Kind.Assignment)).Assignment;

        await busy.SendAsync(new ConnectRequest { StepDeclined = new StepDeclined { FencingToken = declined.FencingToken, Reason = "agent 'busy' is draining" } });
        var accepted = (await busy.NextAsync(Kind.ResultsAccepted)).ResultsAccepted;
        await using var other = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("other", slots: 1));
        var taken = (await other.NextAsync(Kind.Assignment)).Assignment;
        await other.SendAsync(new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = taken.FencingToken } });
        var final = await host.WaitForRunAsync(run.Id, r => r.State == RunState.Succeeded);

        Assert.Equal([declined.FencingToken], accepted.FencingTokens);
        Assert.Equal(1, taken.Attempt);
        Assert.Equal(1, final.Steps[0].Attempt);
        Assert.Equal("other", final.Steps[0].AgentId);
        Assert.Contains(final.Steps[0].History, h => h.Reason.Contains("declined by agent busy", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Connect_AgentEndsItsStreamWithAnAssignmentItNeverTook_StepRunsAtAttemptOneElsewhereWithoutWaitingOutTheLease()
    {
        await using var host = await ServiceTestHost.StartAsync();
        var spec = Spec("goodbye", Shell("a"), Shell("b"));
        spec.Steps[0].Retry = new RetryPolicy { MaxAttempts = 1 };
        spec.Steps[1].Retry = new RetryPolicy { MaxAttempts = 1 };
        var run = (await host.Call(M.SubmitRun, new SubmitRunRequest { Spec = spec })).Run;
        await using var leaving = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("leaving", slots: 2));
        var first = (await leaving.NextAsync(Kind.Assignment)).Assignment;
        var second = (await leaving.NextAsync(Kind.Assignment)).Assignment;

        // The agent ran one assignment; the other arrived as it finished (its decline could not be written any more).
        await leaving.SendAsync(new ConnectRequest { StepStarted = new StepStarted { FencingToken = first.FencingToken } });
        await leaving.SendAsync(new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = first.FencingToken } });
        await leaving.NextAsync(Kind.ResultsAccepted);
        await leaving.CompleteAsync();
        var ended = await leaving.Ended.WaitAsync(ServiceTestHost.Timeout);
        await using var other = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("other", slots: 1));
        var taken = (await other.NextAsync(Kind.Assignment)).Assignment;
        await other.SendAsync(new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = taken.FencingToken } });
        var final = await host.WaitForRunAsync(run.Id, r => r.State == RunState.Succeeded);

        Assert.Equal(Grpc.Core.StatusCode.OK, ended.StatusCode);
        Assert.Equal(second.StepId, taken.StepId);
        Assert.Equal(1, taken.Attempt);
        Assert.All(final.Steps, s => Assert.Equal(1, s.Attempt));
        Assert.Contains(final.Steps.Single(s => s.Id == second.StepId).History, h => h.Reason.Contains("ended its stream before taking the assignment", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Connect_DeclineReasonOverTheLimit_InvalidArgumentNamingTheField()
    {
        await using var host = await ServiceTestHost.StartAsync();
        await host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("long", Shell("a")) });
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("agent-1", slots: 1));
        var assignment = (await agent.NextAsync(Kind.Assignment)).Assignment;

        var decline = new ConnectRequest { StepDeclined = new StepDeclined { FencingToken = assignment.FencingToken, Reason = new string('x', 2000) } };
        await agent.SendAsync(new ConnectRequest { ReportBatch = new ReportBatch { Reports = { decline } } });
        var status = await agent.Ended.WaitAsync(ServiceTestHost.Timeout);

        Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, status.StatusCode);
        Assert.Contains("report_batch.reports[0].step_declined.reason", status.Detail, StringComparison.Ordinal);
    }
}
