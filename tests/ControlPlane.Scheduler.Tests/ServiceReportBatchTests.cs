using ControlPlane.Scheduler.Services;
using ControlPlane.V1;
using Google.Protobuf;
using Grpc.Core;
using Xunit;
using static ControlPlane.Scheduler.Tests.ServiceRunServiceTests;
using Kind = ControlPlane.V1.ConnectResponse.MessageOneofCase;
using M = ControlPlane.Scheduler.Tests.ServiceTestHost.Methods;

namespace ControlPlane.Scheduler.Tests;

public sealed class ServiceReportBatchTests
{
    [Fact]
    public async Task Connect_Welcome_AnnouncesHowManyReportsABatchMayCarry()
    {
        await using var host = await ServiceTestHost.StartAsync();
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("a1", slots: 1));

        var welcome = (await agent.NextAsync(Kind.Welcome)).Welcome;

        Assert.Equal(AgentConnection.MaxReportBatch, welcome.MaxReportBatch);
        Assert.Equal(256, welcome.MaxReportBatch);
    }

    [Fact]
    public async Task Connect_ReportBatch_EachReportRecordedAsIfSentAlone()
    {
        await using var host = await ServiceTestHost.StartAsync();
        var run = (await host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("batched", Shell("a"), Shell("b"), Shell("c", "a", "b")) })).Run;
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("a1", slots: 2));
        var first = (await agent.NextAsync(Kind.Assignment)).Assignment;
        var second = (await agent.NextAsync(Kind.Assignment)).Assignment;

        // Started, progress, a checkpoint, logs and the results of two attempts, as a backlog leaves the agent.
        var batch = new ReportBatch();
        foreach (var assignment in new[] { first, second })
        {
            batch.Reports.Add(new ConnectRequest { StepStarted = new StepStarted { FencingToken = assignment.FencingToken } });
            batch.Reports.Add(new ConnectRequest { StepProgress = new StepProgress { FencingToken = assignment.FencingToken, Percent = 50, Message = "half" } });
            batch.Reports.Add(new ConnectRequest { StepLog = new StepLog { FencingToken = assignment.FencingToken, Lines = { "hello from " + assignment.StepId } } });
        }

        batch.Reports.Add(new ConnectRequest { StepCheckpoint = new StepCheckpoint { FencingToken = first.FencingToken, Data = ByteString.CopyFromUtf8("page=1") } });
        batch.Reports.Add(new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = first.FencingToken, Output = ByteString.CopyFromUtf8(first.StepId) } });
        batch.Reports.Add(new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = second.FencingToken, Output = ByteString.CopyFromUtf8(second.StepId) } });
        await agent.SendAsync(new ConnectRequest { ReportBatch = batch });

        // Both results freed their slots and unblocked c, which an older agent then reports one by one.
        var last = (await agent.NextAsync(Kind.Assignment)).Assignment;
        Assert.Equal("c", last.StepId);
        Assert.Equal(["a", "b"], last.Inputs.Select(i => i.Data.ToStringUtf8()).Order(StringComparer.Ordinal));
        await agent.SendAsync(new ConnectRequest { StepStarted = new StepStarted { FencingToken = last.FencingToken } });
        await agent.SendAsync(new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = last.FencingToken } });
        var final = await host.WaitForRunAsync(run.Id, r => r.State == RunState.Succeeded);

        var events = await WatchAsync(host, run.Id);
        Assert.Equal(RunState.Succeeded, final.State);
        Assert.Equal(2, events.Count(e => e.StepProgressed is { Percent: 50, Message: "half" }));
        Assert.Equal(["hello from a", "hello from b"], events.Where(e => e.StepLogged is not null).SelectMany(e => e.StepLogged.Lines).Order(StringComparer.Ordinal));
        Assert.Single(events, e => e.StepCheckpointed is not null);
        var stats = await host.Call(M.GetStats, new GetStatsRequest());
        Assert.All(stats.Slots, s => Assert.Equal(0, s.Used));
    }

    [Fact]
    public async Task Connect_ReportBatchWithUnknownToken_OnlyThatReportRejected()
    {
        await using var host = await ServiceTestHost.StartAsync();
        var run = (await host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("partly", Shell("a")) })).Run;
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("a1", slots: 1));
        var assignment = (await agent.NextAsync(Kind.Assignment)).Assignment;

        await agent.SendAsync(new ConnectRequest
        {
            ReportBatch = new ReportBatch
            {
                Reports =
                {
                    new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = 424242 } },
                    new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = assignment.FencingToken, Output = ByteString.CopyFromUtf8("ok") } },
                },
            },
        });

        var rejected = (await agent.NextAsync(Kind.ResultRejected)).ResultRejected;
        Assert.Equal(424242, rejected.FencingToken);
        await host.WaitForRunAsync(run.Id, r => r.State == RunState.Succeeded);
    }

    [Theory]
    [InlineData("hello")]
    [InlineData("heartbeat")]
    [InlineData("slots_changed")]
    [InlineData("report_batch")]
    public async Task Connect_ReportBatchHoldingAMessageThatIsNotAStepReport_InvalidArgumentAndNothingRecorded(string kind)
    {
        await using var host = await ServiceTestHost.StartAsync();
        var step = Shell("a");
        step.KeepOutput = true;
        var run = (await host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("refused", step) })).Run;
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("a1", slots: 1));
        var assignment = (await agent.NextAsync(Kind.Assignment)).Assignment;
        var intruder = kind switch
        {
            "hello" => new ConnectRequest { Hello = ServiceScriptedAgent.Hello("a1", slots: 1) },
            "heartbeat" => new ConnectRequest { Heartbeat = new Heartbeat() },
            "slots_changed" => new ConnectRequest { SlotsChanged = new SlotsChanged { Slots = 1 } },
            _ => new ConnectRequest { ReportBatch = new ReportBatch() },
        };

        await agent.SendAsync(new ConnectRequest
        {
            ReportBatch = new ReportBatch
            {
                Reports = { new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = assignment.FencingToken, Output = ByteString.CopyFromUtf8("refused") } }, intruder },
            },
        });
        var status = await agent.Ended.WaitAsync(ServiceTestHost.Timeout);

        // Had the batch's result been recorded, this later one would be refused as stale and the output would differ.
        var hello = ServiceScriptedAgent.Hello("a1", slots: 1);
        hello.RunningAttempts.Add(new RunningAttempt { RunId = run.Id, StepId = "a", Attempt = assignment.Attempt, FencingToken = assignment.FencingToken });
        await using var again = await ServiceScriptedAgent.ConnectAsync(host.Channel, hello);
        Assert.Empty((await again.NextAsync(Kind.Welcome)).Welcome.RevokedFencingTokens);
        await again.SendAsync(new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = assignment.FencingToken, Output = ByteString.CopyFromUtf8("retold") } });
        await host.WaitForRunAsync(run.Id, r => r.State == RunState.Succeeded);

        Assert.Equal(StatusCode.InvalidArgument, status.StatusCode);
        Assert.Contains("report_batch.reports[1]", status.Detail, StringComparison.Ordinal);
        var output = await host.Call(M.GetStepOutput, new GetStepOutputRequest { RunId = run.Id, StepId = "a" });
        Assert.Equal("retold", output.Output.Data.ToStringUtf8());
    }

    [Fact]
    public async Task Connect_ReportBatchOverTheLimit_InvalidArgument()
    {
        await using var host = await ServiceTestHost.StartAsync();
        await using var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("a1", slots: 1));
        var batch = new ReportBatch();
        for (var i = 0; i <= AgentConnection.MaxReportBatch; i++)
        {
            batch.Reports.Add(new ConnectRequest { StepLog = new StepLog { FencingToken = 1, Lines = { "x" } } });
        }

        await agent.SendAsync(new ConnectRequest { ReportBatch = batch });
        var status = await agent.Ended.WaitAsync(ServiceTestHost.Timeout);

        Assert.Equal(StatusCode.InvalidArgument, status.StatusCode);
        Assert.Contains("at most 256", status.Detail, StringComparison.Ordinal);
    }

    /// <summary>Every event of a finished run (WatchRun ends once the run is terminal).</summary>
    private static async Task<List<RunEvent>> WatchAsync(ServiceTestHost host, string runId)
    {
        using var timeout = new CancellationTokenSource(ServiceTestHost.Timeout);
        using var call = host.Channel.CreateCallInvoker().AsyncServerStreamingCall(M.WatchRun, null, new CallOptions(cancellationToken: timeout.Token), new WatchRunRequest { RunId = runId });
        var events = new List<RunEvent>();
        while (await call.ResponseStream.MoveNext(timeout.Token))
        {
            events.Add(call.ResponseStream.Current.Event);
        }

        return events;
    }
}
