using System.Globalization;
using ControlPlane.V1;
using Grpc.Core;
using ControlPlane.Scheduler.Audit;
using ControlPlane.Scheduler.Internal;
using ControlPlane.Scheduler.Security;

namespace ControlPlane.Scheduler.Services;

/// <summary>RunService over an <see cref="IRunStore"/>: request checks, error mapping, and WatchRun's replay-then-tail.</summary>
internal sealed class RunServiceImpl : RunService.RunServiceBase
{
    private static readonly WriteOptions Buffered = new(WriteFlags.BufferHint);

    private readonly SchedulerRuntime _runtime;
    private readonly SchedulerOptions _options;
    private readonly CancellationToken _shutdown;
    private readonly OpenStreams _streams;

    public RunServiceImpl(SchedulerRuntime runtime)
    {
        _runtime = runtime;
        _options = runtime.Options;
        _shutdown = runtime.ShuttingDown;
        _streams = runtime.Streams;
    }

    public override async Task<SubmitRunResponse> SubmitRun(SubmitRunRequest request, ServerCallContext context)
    {
        var ns = await _runtime.ForCallAsync(context, create: true).ConfigureAwait(false);
        if (request.Spec is null)
        {
            throw RpcErrors.Required("spec");
        }

        // Secrets a step names must exist and allow its queue; the spec's own rules are checked first, with every violation.
        if (request.Spec.Steps.Any(s => s.Secrets.Count > 0))
        {
            await RpcErrors.Guard(() => { Internal.RunSpecValidator.ThrowIfInvalid(request.Spec); return Task.FromResult(0); }).ConfigureAwait(false);
            await ns.Secrets.ThrowIfUnusableAsync(request.Spec, context.CancellationToken).ConfigureAwait(false);
        }

        var key = string.IsNullOrEmpty(request.IdempotencyKey) ? null : request.IdempotencyKey;

        // The run's trace: this call's server span (joined to the caller's trace when it sent traceparent), else a new one.
        var traceParent = Internal.RunTrace.ForSubmit();
        var result = await RpcErrors.Guard(() => ns.Store.SubmitRunAsync(request.Spec, key, traceParent, context.CancellationToken)).ConfigureAwait(false);

        // A repeated idempotency key returns the existing run and submits nothing.
        if (result.Created)
        {
            await ns.Audit.RecordAsync(context, AuditActions.RunSubmit, result.Run.Id, result.Run.Name).ConfigureAwait(false);
        }

        return new SubmitRunResponse { Run = result.Run, Created = result.Created };
    }

    public override async Task<GetRunResponse> GetRun(GetRunRequest request, ServerCallContext context)
    {
        var ns = await _runtime.ForCallAsync(context).ConfigureAwait(false);
        var runId = Require(request.RunId, "run_id");
        var run = await RpcErrors.Guard(() => ns.Store.GetRunAsync(runId, context.CancellationToken), ("run_id", runId)).ConfigureAwait(false);
        return new GetRunResponse { Run = run ?? throw RpcErrors.RunNotFound(runId) };
    }

    public override async Task<ListRunsResponse> ListRuns(ListRunsRequest request, ServerCallContext context)
    {
        var ns = await _runtime.ForCallAsync(context).ConfigureAwait(false);
        if (request.PageSize < 0)
        {
            throw RpcErrors.InvalidArgument("page_size", $"page_size is {request.PageSize}; use 0 for the default of 100, or 1 to 1000");
        }

        if (!Enum.IsDefined(request.State))
        {
            throw RpcErrors.InvalidArgument("state", $"state {(int)request.State} is not a RunState; leave it unset for any state");
        }

        RpcErrors.ThrowIfInvalidLabels(request.Labels, "labels");
        var query = new RunQuery(
            request.State,
            request.Labels.Count == 0 ? null : new Dictionary<string, string>(request.Labels, StringComparer.Ordinal),
            request.PageSize,
            string.IsNullOrEmpty(request.PageToken) ? null : request.PageToken);
        var page = await RpcErrors.Guard(() => ns.Store.ListRunsAsync(query, context.CancellationToken)).ConfigureAwait(false);
        var response = new ListRunsResponse { NextPageToken = page.NextPageToken ?? "" };
        response.Runs.AddRange(page.Runs);
        return response;
    }

    public override async Task<CancelRunResponse> CancelRun(CancelRunRequest request, ServerCallContext context)
    {
        var ns = await _runtime.ForCallAsync(context).ConfigureAwait(false);
        var runId = Require(request.RunId, "run_id");
        var run = await RpcErrors.Guard(() => ns.Store.CancelRunAsync(runId, request.Reason, context.CancellationToken), ("run_id", runId)).ConfigureAwait(false);
        await ns.Audit.RecordAsync(context, AuditActions.RunCancel, runId, request.Reason.Length <= 200 ? request.Reason : request.Reason[..200]).ConfigureAwait(false);
        return new CancelRunResponse { Run = run };
    }

    public override async Task<PauseRunResponse> PauseRun(PauseRunRequest request, ServerCallContext context)
    {
        var ns = await _runtime.ForCallAsync(context).ConfigureAwait(false);
        var runId = Require(request.RunId, "run_id");
        var run = await RpcErrors.Guard(() => ns.Store.PauseRunAsync(runId, context.CancellationToken), ("run_id", runId)).ConfigureAwait(false);
        await ns.Audit.RecordAsync(context, AuditActions.RunPause, runId).ConfigureAwait(false);
        return new PauseRunResponse { Run = run };
    }

    public override async Task<ResumeRunResponse> ResumeRun(ResumeRunRequest request, ServerCallContext context)
    {
        var ns = await _runtime.ForCallAsync(context).ConfigureAwait(false);
        var runId = Require(request.RunId, "run_id");
        var run = await RpcErrors.Guard(() => ns.Store.ResumeRunAsync(runId, context.CancellationToken), ("run_id", runId)).ConfigureAwait(false);
        await ns.Audit.RecordAsync(context, AuditActions.RunResume, runId).ConfigureAwait(false);
        return new ResumeRunResponse { Run = run };
    }

    public override async Task<RetryRunResponse> RetryRun(RetryRunRequest request, ServerCallContext context)
    {
        var ns = await _runtime.ForCallAsync(context).ConfigureAwait(false);
        var runId = Require(request.RunId, "run_id");
        var run = await RpcErrors.Guard(() => ns.Store.RetryRunAsync(runId, context.CancellationToken), ("run_id", runId)).ConfigureAwait(false);
        await ns.Audit.RecordAsync(context, AuditActions.RunRetry, runId).ConfigureAwait(false);
        return new RetryRunResponse { Run = run };
    }

    public override async Task<ApproveGateResponse> ApproveGate(ApproveGateRequest request, ServerCallContext context)
    {
        var ns = await _runtime.ForCallAsync(context).ConfigureAwait(false);
        var runId = Require(request.RunId, "run_id");
        var stepId = Require(request.StepId, "step_id");
        var approve = request.Decision switch
        {
            GateDecision.Approve => true,
            GateDecision.Reject => false,
            _ => throw RpcErrors.InvalidArgument("decision", "decision is required: GATE_DECISION_APPROVE or GATE_DECISION_REJECT"),
        };
        // With authentication on, the decision is the token's: a caller cannot name someone else as the decider.
        var decidedBy = CallerClaims.TokenNameOf(CallerClaims.UserOf(context)) ?? request.DecidedBy;
        var input = new GateDecisionInput(runId, stepId, approve, decidedBy, request.Comment);
        var run = await RpcErrors.Guard(() => ns.Store.DecideGateAsync(input, context.CancellationToken), ("run_id", runId), ("step_id", stepId)).ConfigureAwait(false);
        await ns.Audit.RecordAsync(context, approve ? AuditActions.GateApprove : AuditActions.GateReject, $"{runId}/{stepId}").ConfigureAwait(false);
        return new ApproveGateResponse { Run = run };
    }

    public override async Task<GetStepOutputResponse> GetStepOutput(GetStepOutputRequest request, ServerCallContext context)
    {
        var ns = await _runtime.ForCallAsync(context).ConfigureAwait(false);
        var runId = Require(request.RunId, "run_id");
        var stepId = Require(request.StepId, "step_id");
        var output = await RpcErrors.Guard(() => ns.Store.GetStepOutputAsync(runId, stepId, context.CancellationToken), ("run_id", runId), ("step_id", stepId)).ConfigureAwait(false);
        return new GetStepOutputResponse
        {
            Output = output ?? throw RpcErrors.WithReason(
                StatusCode.NotFound,
                ErrorReason.OutputNotAvailable,
                $"step {stepId} of run {runId} has no output: it has not succeeded, or its output was dropped once every consumer succeeded (set keep_output to keep it)",
                ("run_id", runId),
                ("step_id", stepId)),
        };
    }

    /// <summary>
    /// Whether the stream takes write options (buffer hints): gRPC's does; the JSON-transcoded stream's throws
    /// NotImplementedException on them and writes each message as it comes.
    /// </summary>
    private static bool SupportsWriteOptions<T>(IServerStreamWriter<T> responses)
    {
        try
        {
            responses.WriteOptions = null;
            return true;
        }
        catch (NotImplementedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Replays events after after_seq in batches, then tails on the store's RunEventsAppended wake-ups (re-reading
    /// every WatchRecheckInterval in case one is lost) and ends once the run is terminal and its last event was sent.
    /// </summary>
    public override async Task WatchRun(WatchRunRequest request, IServerStreamWriter<WatchRunResponse> responses, ServerCallContext context)
    {
        using var open = _streams.Enter();
        var runId = Require(request.RunId, "run_id");
        if (request.AfterSeq < 0)
        {
            throw RpcErrors.InvalidArgument("after_seq", $"after_seq is {request.AfterSeq}; pass 0 to replay the whole log, or the seq of the last event received");
        }

        if (_shutdown.IsCancellationRequested)
        {
            throw RpcErrors.ShuttingDown("the scheduler is shutting down; watch again on another replica", ("run_id", runId), ("after_seq", request.AfterSeq.ToString(CultureInfo.InvariantCulture)));
        }

        var ns = await _runtime.ForCallAsync(context).ConfigureAwait(false);
        using var wake = new WakeUp();

        // Subscribe before the first read so an event appended in between still wakes this watcher.
        using var subscription = ns.Hub.Watch(runId, wake);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, _shutdown);
        var token = cancel.Token;

        // The run's state after the events sent so far: replaying from the start shows every change; a watch that
        // starts later learns it from one snapshot once it has caught up.
        RunState? state = request.AfterSeq == 0 ? RunState.Unspecified : null;
        var seq = request.AfterSeq;
        var buffering = SupportsWriteOptions(responses);
        try
        {
            while (true)
            {
                var events = await ReadEventsAsync(ns.Store, runId, seq, token).ConfigureAwait(false);
                for (var i = 0; i < events.Count; i++)
                {
                    // One flush per batch: every event but the last is only buffered (gRPC only: the JSON stream's
                    // writer has no write options and flushes each message).
                    var e = events[i];
                    if (buffering)
                    {
                        responses.WriteOptions = i < events.Count - 1 ? Buffered : null;
                    }

                    // Cancelled only when the caller leaves: a write cut by shutdown would reset the stream and lose the
                    // UNAVAILABLE status that says where to resume.
                    await responses.WriteAsync(new WatchRunResponse { Event = e }, context.CancellationToken).ConfigureAwait(false);
                    seq = e.Seq;
                    if (e.EventCase == RunEvent.EventOneofCase.RunStateChanged)
                    {
                        state = e.RunStateChanged.ToState;
                    }
                }

                if (events.Count > 0)
                {
                    // The store may return fewer than asked (it caps its batches): read until nothing is left.
                    continue;
                }

                if (state is null)
                {
                    var run = await RpcErrors.Guard(() => ns.Store.GetRunAsync(runId, token), ("run_id", runId)).ConfigureAwait(false) ?? throw RpcErrors.RunNotFound(runId);
                    if (run.LastEventSeq > seq)
                    {
                        // Events arrived since the read: send them first; their state changes follow them.
                        continue;
                    }

                    state = run.State;
                }

                if (RunStateMachine.IsTerminal(state.Value))
                {
                    return;
                }

                await wake.WaitAsync(_options.WatchRecheckInterval, token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_shutdown.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            throw RpcErrors.ShuttingDown(
                $"the scheduler is shutting down; watch again with after_seq {seq} to continue where this stream stopped",
                ("run_id", runId),
                ("after_seq", seq.ToString(CultureInfo.InvariantCulture)));
        }
    }

    private async Task<IReadOnlyList<RunEvent>> ReadEventsAsync(IRunStore store, string runId, long afterSeq, CancellationToken token)
    {
        try
        {
            return await store.ReadEventsAsync(runId, afterSeq, _options.WatchBatch, token).ConfigureAwait(false);
        }
        catch (RunStoreException ex) when (ex.Error == RunStoreError.NotFound)
        {
            throw RpcErrors.RunNotFound(runId);
        }
        catch (Exception ex) when (RpcErrors.Map(ex, ("run_id", runId)) is { } rpc && !ReferenceEquals(rpc, ex))
        {
            throw rpc;
        }
    }

    private static string Require(string value, string field) =>
        string.IsNullOrEmpty(value) ? throw RpcErrors.Required(field) : value;
}
