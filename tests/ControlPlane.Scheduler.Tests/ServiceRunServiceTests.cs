using ControlPlane.V1;
using Google.Rpc;
using Grpc.Core;
using Grpc.Health.V1;
using Xunit;
using M = ControlPlane.Scheduler.Tests.ServiceTestHost.Methods;

namespace ControlPlane.Scheduler.Tests;

public sealed class ServiceRunServiceTests : IAsyncLifetime
{
    private ServiceTestHost _host = null!;

    public async Task InitializeAsync() => _host = await ServiceTestHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    internal static StepSpec Shell(string id, params string[] needs)
    {
        var step = new StepSpec { Id = id, Framework = "shell", Command = "true" };
        step.Needs.Add(needs);
        return step;
    }

    internal static StepSpec Gate(string id, params string[] needs)
    {
        var step = new StepSpec { Id = id, Kind = StepKind.Gate };
        step.Needs.Add(needs);
        return step;
    }

    internal static RunSpec Spec(string name, params StepSpec[] steps)
    {
        var spec = new RunSpec { Name = name };
        spec.Steps.Add(steps);
        return spec;
    }

    [Fact]
    public async Task SubmitRun_CyclicSpec_InvalidArgumentNamingTheCycle()
    {
        var spec = Spec("cyclic", Shell("a", "c"), Shell("b", "a"), Shell("c", "b"));

        var ex = await Assert.ThrowsAsync<RpcException>(() => _host.Call(M.SubmitRun, new SubmitRunRequest { Spec = spec }));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains("steps[0].needs: ", ex.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("cycle", ex.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("a -> c -> b", ex.Status.Detail, StringComparison.Ordinal);
        var details = ex.GetRpcStatus()?.GetDetail<BadRequest>();
        Assert.NotNull(details);
        var violation = Assert.Single(details.FieldViolations);
        Assert.Equal("steps[0].needs", violation.Field);
        Assert.Contains("a -> c -> b", violation.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SubmitRun_SeveralViolations_AllListedWithTheirFields()
    {
        var spec = Spec("bad", Shell("a", "missing"), new StepSpec { Id = "a", Framework = "nope" });

        var ex = await Assert.ThrowsAsync<RpcException>(() => _host.Call(M.SubmitRun, new SubmitRunRequest { Spec = spec }));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains("steps[0].needs[0]: ", ex.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("steps[1].framework: ", ex.Status.Detail, StringComparison.Ordinal);
        var fields = ex.GetRpcStatus()!.GetDetail<BadRequest>()!.FieldViolations.Select(v => v.Field).ToList();
        Assert.Contains("steps[0].needs[0]", fields);
        Assert.Contains("steps[1].framework", fields);
        Assert.Contains("steps[1].id", fields);
    }

    [Fact]
    public async Task SubmitRun_NoSpec_InvalidArgumentNamingSpec()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => _host.Call(M.SubmitRun, new SubmitRunRequest()));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Equal("spec is required", ex.Status.Detail);
    }

    [Fact]
    public async Task SubmitRun_SameIdempotencyKey_ReturnsTheFirstRun()
    {
        var first = await _host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("idem", Gate("g")), IdempotencyKey = "k-1" });
        var second = await _host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("idem", Gate("g")), IdempotencyKey = "k-1" });

        Assert.True(first.Created);
        Assert.False(second.Created);
        Assert.Equal(first.Run.Id, second.Run.Id);
    }

    [Fact]
    public async Task GetRun_UnknownRun_NotFoundNamingTheRun()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => _host.Call(M.GetRun, new GetRunRequest { RunId = "no-such-run" }));

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
        Assert.StartsWith("run no-such-run not found", ex.Status.Detail, StringComparison.Ordinal);
        var info = ex.GetRpcStatus()?.GetDetail<ErrorInfo>();
        Assert.NotNull(info);
        Assert.Equal("ERROR_REASON_RUN_NOT_FOUND", info.Reason);
        Assert.Equal("controlplane.v1", info.Domain);
        Assert.Equal("no-such-run", info.Metadata["run_id"]);
    }

    [Fact]
    public async Task GetRun_EmptyRunId_InvalidArgumentNamingTheField()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => _host.Call(M.GetRun, new GetRunRequest()));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Equal("run_id is required", ex.Status.Detail);
        Assert.Equal("run_id", Assert.Single(ex.GetRpcStatus()!.GetDetail<BadRequest>()!.FieldViolations).Field);
    }

    [Fact]
    public async Task CancelRun_UnknownRun_NotFound()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => _host.Call(M.CancelRun, new CancelRunRequest { RunId = "ghost" }));

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
        Assert.Contains("ghost", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListRuns_NegativePageSize_InvalidArgumentNamingTheField()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => _host.Call(M.ListRuns, new ListRunsRequest { PageSize = -5 }));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.StartsWith("page_size is -5", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ApproveGate_NoDecision_InvalidArgumentNamingTheField()
    {
        var run = (await _host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("gated", Gate("g")) })).Run;

        var ex = await Assert.ThrowsAsync<RpcException>(() => _host.Call(M.ApproveGate, new ApproveGateRequest { RunId = run.Id, StepId = "g" }));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.StartsWith("decision is required", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ApproveGate_ApproveOneRejectAnother_RunsSucceedAndFail()
    {
        var approved = (await _host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("approve-me", Gate("g")) })).Run;
        var rejected = (await _host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("reject-me", Gate("g")) })).Run;
        await _host.WaitForRunAsync(approved.Id, r => r.Steps[0].State == StepState.WaitingApproval);
        await _host.WaitForRunAsync(rejected.Id, r => r.Steps[0].State == StepState.WaitingApproval);

        await _host.Call(M.ApproveGate, new ApproveGateRequest { RunId = approved.Id, StepId = "g", Decision = GateDecision.Approve, DecidedBy = "alice" });
        await _host.Call(M.ApproveGate, new ApproveGateRequest { RunId = rejected.Id, StepId = "g", Decision = GateDecision.Reject, DecidedBy = "bob", Comment = "not today" });

        var a = await _host.WaitForRunAsync(approved.Id, r => r.State == RunState.Succeeded);
        var b = await _host.WaitForRunAsync(rejected.Id, r => r.State == RunState.Failed);
        Assert.Equal("alice", a.Steps[0].DecidedBy);
        Assert.Equal(StepState.Failed, b.Steps[0].State);
        Assert.Contains("not today", b.Steps[0].Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ApproveGate_DecidedTwice_FailedPrecondition()
    {
        var run = (await _host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("twice", Gate("g")) })).Run;
        await _host.WaitForRunAsync(run.Id, r => r.Steps[0].State == StepState.WaitingApproval);
        await _host.Call(M.ApproveGate, new ApproveGateRequest { RunId = run.Id, StepId = "g", Decision = GateDecision.Approve });

        var ex = await Assert.ThrowsAsync<RpcException>(() =>
            _host.Call(M.ApproveGate, new ApproveGateRequest { RunId = run.Id, StepId = "g", Decision = GateDecision.Reject }));

        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
    }

    [Fact]
    public async Task WatchRun_ResumedFromLastSeq_GetsEveryLaterEventOnceAndEndsWhenTerminal()
    {
        var run = (await _host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("watched", Gate("g1"), Gate("g2", "g1")) })).Run;
        await _host.WaitForRunAsync(run.Id, r => r.Steps[0].State == StepState.WaitingApproval);

        // First watcher: read what exists, then drop the stream as a client losing its connection would.
        var firstSeen = new List<RunEvent>();
        using (var cts = new CancellationTokenSource())
        using (var first = _host.Channel.CreateCallInvoker().AsyncServerStreamingCall(M.WatchRun, null, new CallOptions(cancellationToken: cts.Token), new WatchRunRequest { RunId = run.Id }))
        {
            var known = (await _host.Call(M.GetRun, new GetRunRequest { RunId = run.Id })).Run.LastEventSeq;
            while (firstSeen.Count == 0 || firstSeen[^1].Seq < known)
            {
                Assert.True(await first.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(ServiceTestHost.Timeout));
                firstSeen.Add(first.ResponseStream.Current.Event);
            }

            await cts.CancelAsync();
        }

        // Events happen while nobody watches; a second watcher is already tailing before the last decision.
        await _host.Call(M.ApproveGate, new ApproveGateRequest { RunId = run.Id, StepId = "g1", Decision = GateDecision.Approve });
        var lastSeq = firstSeen[^1].Seq;
        using var resumed = _host.Channel.CreateCallInvoker().AsyncServerStreamingCall(M.WatchRun, null, default, new WatchRunRequest { RunId = run.Id, AfterSeq = lastSeq });
        var later = new List<RunEvent>();
        var readAll = Task.Run(async () =>
        {
            while (await resumed.ResponseStream.MoveNext(CancellationToken.None))
            {
                later.Add(resumed.ResponseStream.Current.Event);
            }
        });
        await _host.WaitForRunAsync(run.Id, r => r.Steps[1].State == StepState.WaitingApproval);
        await _host.Call(M.ApproveGate, new ApproveGateRequest { RunId = run.Id, StepId = "g2", Decision = GateDecision.Approve });

        // The stream ends by itself once the run is terminal and its last event was sent.
        await readAll.WaitAsync(ServiceTestHost.Timeout);
        Assert.Equal(StatusCode.OK, resumed.GetStatus().StatusCode);
        var final = (await _host.Call(M.GetRun, new GetRunRequest { RunId = run.Id })).Run;
        Assert.Equal(RunState.Succeeded, final.State);
        Assert.Equal(Enumerable.Range((int)lastSeq + 1, (int)(final.LastEventSeq - lastSeq)).Select(i => (long)i), later.Select(e => e.Seq));
        Assert.Equal(RunState.Succeeded, later.Last(e => e.RunStateChanged is not null).RunStateChanged.ToState);
        Assert.Contains(later, e => e.GateDecided?.StepId == "g1");
    }

    [Fact]
    public async Task WatchRun_UnknownRun_NotFound()
    {
        using var call = _host.Channel.CreateCallInvoker().AsyncServerStreamingCall(M.WatchRun, null, default, new WatchRunRequest { RunId = "nobody" });

        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(ServiceTestHost.Timeout));

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
    }

    [Fact]
    public async Task GetStepOutput_StepNotFinished_NotFoundSayingWhy()
    {
        var run = (await _host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("no-output", Shell("a")) })).Run;

        var ex = await Assert.ThrowsAsync<RpcException>(() => _host.Call(M.GetStepOutput, new GetStepOutputRequest { RunId = run.Id, StepId = "a" }));

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
        Assert.Contains("has no output", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HealthCheck_StoreAnswers_Serving()
    {
        var response = await _host.Call(M.HealthCheck, new HealthCheckRequest());

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, response.Status);
    }

    [Fact]
    public async Task SetLimit_NoKind_InvalidArgumentNamingTheField()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => _host.Call(M.SetLimit, new SetLimitRequest { Name = "gpu", Limit = 2 }));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.StartsWith("kind is required", ex.Status.Detail, StringComparison.Ordinal);
    }
}
