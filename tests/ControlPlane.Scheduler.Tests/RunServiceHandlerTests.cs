using ControlPlane.Scheduler.Services;
using ControlPlane.V1;
using Google.Rpc;
using Grpc.Core;
using Grpc.Core.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

/// <summary>
/// RunService's handlers called directly, without a server, through Grpc.Core.Testing's TestServerCallContext:
/// the status each bad request gets and the rich details it carries.
/// </summary>
public sealed class RunServiceHandlerTests : IAsyncLifetime
{
    private readonly EmbeddedRunStore _store = new(new RunStoreOptions());
    private readonly CancellationTokenSource _shutdown = new();
    private NamespaceDirectory _namespaces = null!;
    private RunServiceImpl _service = null!;

    public async Task InitializeAsync()
    {
        var options = new SchedulerOptions();
        _namespaces = new NamespaceDirectory(
            new Internal.SingleNamespaceStores(_store, options.Namespace),
            (ns, ct) => NamespaceRuntime.StartAsync(ns, _store, options, new Security.EmbeddedSecretStore(), null, new Audit.EmbeddedAuditStore(), TimeProvider.System, NullLogger.Instance, ct),
            NullLogger.Instance);
        await _namespaces.StartAsync(options.Namespace, CancellationToken.None);
        _service = new RunServiceImpl(new SchedulerRuntime(options, _namespaces, NullLogger.Instance, _shutdown.Token));
    }

    [Fact]
    public async Task SubmitRun_InvalidSpec_BadRequestListsEveryViolationAndNothingIsStored()
    {
        var spec = Run(Shell("a").With(s => s.Framework = "perl"), Shell("b", "a", "ghost"), Shell("b"));

        var ex = await Assert.ThrowsAsync<RpcException>(() => _service.SubmitRun(new SubmitRunRequest { Spec = spec }, Context("SubmitRun")));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        var violations = ex.GetRpcStatus()!.GetDetail<BadRequest>()!.FieldViolations;
        Assert.Equal(["steps[0].framework", "steps[1].needs[1]", "steps[2].id"], violations.Select(v => v.Field).Order(StringComparer.Ordinal));
        Assert.All(violations, v => Assert.False(string.IsNullOrWhiteSpace(v.Description)));
        Assert.Empty((await _store.ListRunsAsync(new RunQuery(RunState.Unspecified, null, 0, null))).Runs);
    }

    [Fact]
    public async Task SubmitRun_ThousandsOfViolations_DetailsStaySmallEnoughForAnyClientsHeaders()
    {
        var spec = Run(Enumerable.Range(0, 2000).Select(i => Shell("s" + i).With(s => s.Framework = "perl")).ToArray());

        var ex = await Assert.ThrowsAsync<RpcException>(() => _service.SubmitRun(new SubmitRunRequest { Spec = spec }, Context("SubmitRun")));

        var details = ex.GetRpcStatus()!;
        var violations = details.GetDetail<BadRequest>()!.FieldViolations;
        Assert.Equal(RpcErrors.MaxViolations, violations.Count);
        Assert.Equal("steps[0].framework", violations[0].Field);
        Assert.Contains("more violations were found; only the first 49 are listed", violations[^1].Description, StringComparison.Ordinal);
        Assert.True(ex.Status.Detail.Length <= RpcErrors.MaxMessageLength, $"message of {ex.Status.Detail.Length} characters");
        Assert.True(Google.Protobuf.MessageExtensions.ToByteArray(details).Length < 8 * 1024, "the details must fit grpcio's default 8 KiB metadata limit");
    }

    [Fact]
    public async Task CancelRun_FinishedRun_FailedPreconditionWithRunStateReason()
    {
        var run = (await _store.SubmitRunAsync(Run(Gate("g")), null)).Run;
        await _store.CancelRunAsync(run.Id, "first");

        var ex = await Assert.ThrowsAsync<RpcException>(() => _service.CancelRun(new CancelRunRequest { RunId = run.Id }, Context("CancelRun")));

        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        var info = ex.GetRpcStatus()!.GetDetail<ErrorInfo>()!;
        Assert.Equal("ERROR_REASON_RUN_STATE_CONFLICT", info.Reason);
        Assert.Equal(run.Id, info.Metadata["run_id"]);
    }

    [Fact]
    public async Task ApproveGate_TaskStep_FailedPreconditionNotAGate()
    {
        var run = (await _store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        var request = new ApproveGateRequest { RunId = run.Id, StepId = "a", Decision = GateDecision.Approve };

        var ex = await Assert.ThrowsAsync<RpcException>(() => _service.ApproveGate(request, Context("ApproveGate")));

        var info = ex.GetRpcStatus()!.GetDetail<ErrorInfo>()!;
        Assert.Equal("ERROR_REASON_NOT_A_GATE", info.Reason);
        Assert.Equal("a", info.Metadata["step_id"]);
    }

    [Fact]
    public async Task GetStepOutput_StepNotSucceeded_NotFoundOutputNotAvailable()
    {
        var run = (await _store.SubmitRunAsync(Run(Shell("a")), null)).Run;

        var ex = await Assert.ThrowsAsync<RpcException>(() =>
            _service.GetStepOutput(new GetStepOutputRequest { RunId = run.Id, StepId = "a" }, Context("GetStepOutput")));

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
        Assert.Equal("ERROR_REASON_OUTPUT_NOT_AVAILABLE", ex.GetRpcStatus()!.GetDetail<ErrorInfo>()!.Reason);
    }

    [Fact]
    public async Task WatchRun_NegativeAfterSeq_InvalidArgumentNamingTheField()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() =>
            _service.WatchRun(new WatchRunRequest { RunId = "r", AfterSeq = -1 }, new RecordingWriter(), Context("WatchRun")));

        Assert.Equal("after_seq", Assert.Single(ex.GetRpcStatus()!.GetDetail<BadRequest>()!.FieldViolations).Field);
    }

    [Fact]
    public async Task WatchRun_ReplicaShuttingDown_UnavailableSayingWhereToResume()
    {
        var run = (await _store.SubmitRunAsync(Run(Gate("g")), null)).Run;
        await _shutdown.CancelAsync();

        var ex = await Assert.ThrowsAsync<RpcException>(() =>
            _service.WatchRun(new WatchRunRequest { RunId = run.Id, AfterSeq = 2 }, new RecordingWriter(), Context("WatchRun")));

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        var info = ex.GetRpcStatus()!.GetDetail<ErrorInfo>()!;
        Assert.Equal("ERROR_REASON_SCHEDULER_SHUTTING_DOWN", info.Reason);
        Assert.Equal("2", info.Metadata["after_seq"]);
    }

    [Fact]
    public async Task WatchRun_FinishedRun_ReplaysEveryEventInOrderThenEnds()
    {
        var run = (await _store.SubmitRunAsync(Run(Gate("g")), null)).Run;
        var finished = await _store.CancelRunAsync(run.Id, "done");
        var writer = new RecordingWriter();

        await _service.WatchRun(new WatchRunRequest { RunId = run.Id }, writer, Context("WatchRun"));

        Assert.Equal(Enumerable.Range(1, (int)finished.LastEventSeq).Select(i => (long)i), writer.Written.Select(w => w.Event.Seq));
        Assert.Equal(RunState.Cancelled, writer.Written[^1].Event.RunStateChanged.ToState);
    }

    public async Task DisposeAsync()
    {
        foreach (var ns in await _namespaces.CloseAsync())
        {
            await ns.CompletePipelineAsync(CancellationToken.None);
            await ns.StopAsync();
        }

        _shutdown.Dispose();
        await _store.DisposeAsync();
    }

    private static ServerCallContext Context(string method) =>
        TestServerCallContext.Create(
            $"/controlplane.v1.RunService/{method}",
            null,
            DateTime.UtcNow.AddMinutes(1),
            [],
            CancellationToken.None,
            "ipv4:127.0.0.1:5000",
            null,
            null,
            _ => Task.CompletedTask,
            () => null,
            _ => { });

    private sealed class RecordingWriter : IServerStreamWriter<WatchRunResponse>
    {
        public List<WatchRunResponse> Written { get; } = [];

        public WriteOptions? WriteOptions { get; set; }

        public Task WriteAsync(WatchRunResponse message) => WriteAsync(message, CancellationToken.None);

        public Task WriteAsync(WatchRunResponse message, CancellationToken cancellationToken)
        {
            Written.Add(message);
            return Task.CompletedTask;
        }
    }
}
