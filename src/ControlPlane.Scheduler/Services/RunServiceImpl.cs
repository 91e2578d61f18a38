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
        var spec = request.PipelineYaml.Length > 0 ? ReadPipeline(request) : request.Spec ?? throw RpcErrors.Required("spec");

        // Secrets a step names must exist and allow its queue; the spec's own rules are checked first, with every violation.
        if (spec.Steps.Any(s => s.Secrets.Count > 0))
        {
            await RpcErrors.Guard(() => { Internal.RunSpecValidator.ThrowIfInvalid(spec); return Task.FromResult(0); }).ConfigureAwait(false);
            await ns.Secrets.ThrowIfUnusableAsync(spec, context.CancellationToken).ConfigureAwait(false);
        }

        var key = string.IsNullOrEmpty(request.IdempotencyKey) ? null : request.IdempotencyKey;

        // The run's trace: this call's server span (joined to the caller's trace when it sent traceparent), else a new one.
        var traceParent = Internal.RunTrace.ForSubmit();
        var result = await RpcErrors.Guard(() => ns.Store.SubmitRunAsync(spec, key, traceParent, context.CancellationToken)).ConfigureAwait(false);

        // A repeated idempotency key returns the existing run and submits nothing.
        if (result.Created)
        {
            await ns.Audit.RecordAsync(context, AuditActions.RunSubmit, result.Run.Id, result.Run.Name).ConfigureAwait(false);
        }

        return new SubmitRunResponse { Run = result.Run, Created = result.Created };
    }

    /// <summary>Longest pipeline_file_name accepted.</summary>
    private const int MaxPipelineFileName = 256;

    /// <summary>
    /// The RunSpec of request.pipeline_yaml, read by cpctl's reader (ControlPlane.Client.PipelineFile) and validated: every
    /// problem, the reader's and the spec's, is one field violation on pipeline_yaml that starts with file:line:column.
    /// </summary>
    private RunSpec ReadPipeline(SubmitRunRequest request)
    {
        if (request.Spec is not null)
        {
            throw RpcErrors.InvalidArgument("pipeline_yaml", "both spec and pipeline_yaml are set; send the run as one of them");
        }

        if (request.PipelineFileName.Length > MaxPipelineFileName)
        {
            throw RpcErrors.InvalidArgument("pipeline_file_name", $"pipeline_file_name is {request.PipelineFileName.Length} characters; at most {MaxPipelineFileName} are allowed (send the file's name, not its path)");
        }

        if (request.PipelineYaml.Length > _options.MaxSubmitSize)
        {
            throw RpcErrors.InvalidArgument("pipeline_yaml", $"pipeline_yaml is {request.PipelineYaml.Length} characters; at most {_options.MaxSubmitSize} are accepted (MaxSubmitSize)");
        }

        var name = request.PipelineFileName.Length > 0 ? request.PipelineFileName : null;
        ControlPlane.Client.PipelineFile file;
        try
        {
            file = ControlPlane.Client.PipelineFile.Parse(request.PipelineYaml, name);
        }
        catch (ControlPlane.Client.PipelineFileException ex)
        {
            throw PipelineErrors(ex.Errors.Select(e => e.ToString()).ToList());
        }

        try
        {
            Internal.RunSpecValidator.ThrowIfInvalid(file.Spec);
        }
        catch (RunSpecValidationException ex)
        {
            throw PipelineErrors(ex.Violations.Select(v =>
            {
                var at = file.Locate(v.Field) is { } l ? $"{name ?? "<pipeline>"}:{l.Line}:{l.Column}" : name ?? "<pipeline>";
                return $"{at}: {v.Field}: {v.Description}";
            }).ToList());
        }

        return file.Spec;
    }

    private static RpcException PipelineErrors(IReadOnlyList<string> errors) =>
        RpcErrors.BadRequest(
            string.Join("; ", errors),
            errors.Select(e => new Google.Rpc.BadRequest.Types.FieldViolation { Field = "pipeline_yaml", Description = e }));

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
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            // The watcher left (a browser changed page, a client cancelled): nobody is there to answer, and the JSON
            // stream's handler would log the cancellation as a failure.
        }
    }

    /// <summary>
    /// Without after_cursor: the newest matching runs, caught_up, then every change. With it: the changes after it, then
    /// caught_up (a cursor the feed no longer continues from: reset and a new snapshot instead). Changes come from the
    /// store's run change feed, read on the store's RunEventsAppended wake-ups (any replica's) and every
    /// WatchRecheckInterval; each batch reads every changed run's summary once.
    /// </summary>
    public override async Task WatchRuns(WatchRunsRequest request, IServerStreamWriter<WatchRunsResponse> responses, ServerCallContext context)
    {
        using var open = _streams.Enter();
        if (!Enum.IsDefined(request.State))
        {
            throw RpcErrors.InvalidArgument("state", $"state {(int)request.State} is not a RunState; leave it unset for any state");
        }

        if (request.SnapshotSize is < 0 or > MaxWatchSnapshot)
        {
            throw RpcErrors.InvalidArgument("snapshot_size", $"snapshot_size is {request.SnapshotSize}; use 0 for the default of 100, or 1 to {MaxWatchSnapshot}");
        }

        RpcErrors.ThrowIfInvalidLabels(request.Labels, "labels");
        string? cursor = null;
        if (request.AfterCursor.Length > 0)
        {
            try
            {
                RunFeedCursor.Parse(request.AfterCursor);
            }
            catch (RunStoreException ex)
            {
                throw RpcErrors.InvalidArgument("after_cursor", ex.Message);
            }

            cursor = request.AfterCursor;
        }

        if (_shutdown.IsCancellationRequested)
        {
            throw RpcErrors.ShuttingDown("the scheduler is shutting down; watch again on another replica", ("after_cursor", request.AfterCursor));
        }

        var ns = await _runtime.ForCallAsync(context).ConfigureAwait(false);
        using var wake = new WakeUp();

        // Subscribed before the first read, so a change made in between still wakes this watcher.
        using var subscription = ns.Hub.WatchAll(wake);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, _shutdown);
        var token = cancel.Token;
        var watch = new RunListWatch(request, ns.Store, responses, SupportsWriteOptions(responses), context.CancellationToken, token);
        var batch = Math.Min(_options.WatchBatch, RunFeedCursor.MaxRead);
        try
        {
            if (cursor is null)
            {
                cursor = await watch.SendSnapshotAsync(reset: false).ConfigureAwait(false);
            }

            var caughtUp = false;
            while (true)
            {
                var page = await RpcErrors.Guard(() => ns.Store.ReadRunChangesAsync(cursor, batch, token), ("after_cursor", cursor)).ConfigureAwait(false);
                if (page.CursorExpired)
                {
                    // Changes after the cursor are gone (trimmed, or the store lost its data): start over from a snapshot.
                    cursor = await watch.SendSnapshotAsync(reset: true).ConfigureAwait(false);
                    caughtUp = false;
                    continue;
                }

                await watch.SendChangesAsync(page.Changes).ConfigureAwait(false);
                cursor = page.Cursor;
                if (page.Changes.Count >= batch)
                {
                    continue;
                }

                if (!caughtUp)
                {
                    caughtUp = true;
                    await watch.WriteAsync(new WatchRunsResponse { CaughtUp = true, Cursor = cursor }, last: true).ConfigureAwait(false);
                }

                await wake.WaitAsync(_options.WatchRecheckInterval, token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_shutdown.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            var resume = watch.LastCursor ?? cursor;
            throw RpcErrors.ShuttingDown(
                resume is null
                    ? "the scheduler is shutting down; watch again on another replica"
                    : $"the scheduler is shutting down; watch again with after_cursor {resume} to continue where this stream stopped",
                ("after_cursor", resume));
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            // The watcher left: as in WatchRun, nothing to answer.
        }
    }

    /// <summary>Most runs a WatchRuns snapshot holds.</summary>
    private const int MaxWatchSnapshot = 1000;

    /// <summary>One WatchRuns stream: its filter, the runs it has shown the watcher, and its writes.</summary>
    private sealed class RunListWatch(
        WatchRunsRequest request,
        IRunStore store,
        IServerStreamWriter<WatchRunsResponse> responses,
        bool buffering,
        CancellationToken callerGone,
        CancellationToken token)
    {
        // Runs the watcher holds (sent and matching). Unknown for a stream resumed from a cursor until its next snapshot:
        // the runs an earlier stream sent are not known here.
        private readonly HashSet<string> _shown = new(StringComparer.Ordinal);
        private bool _viewKnown;

        /// <summary>The cursor of the last message written that carried one.</summary>
        public string? LastCursor { get; private set; }

        /// <summary>Sends the newest matching runs (no cursor on them: a watcher cut off mid-snapshot starts over); returns the feed cursor they are current at.</summary>
        public async Task<string> SendSnapshotAsync(bool reset)
        {
            // The cursor is read before the runs: a change made while they are read is sent again after the snapshot.
            var head = await RpcErrors.Guard(() => store.ReadRunChangesAsync(null, 0, token)).ConfigureAwait(false);
            var query = new RunQuery(
                request.State,
                request.Labels.Count == 0 ? null : new Dictionary<string, string>(request.Labels, StringComparer.Ordinal),
                request.SnapshotSize == 0 ? 100 : request.SnapshotSize,
                null);
            var page = await RpcErrors.Guard(() => store.ListRunsAsync(query, token)).ConfigureAwait(false);
            _shown.Clear();
            _viewKnown = true;
            if (reset && page.Runs.Count == 0)
            {
                await WriteAsync(new WatchRunsResponse { Reset = true }, last: false).ConfigureAwait(false);
            }

            for (var i = 0; i < page.Runs.Count; i++)
            {
                _shown.Add(page.Runs[i].Id);
                await WriteAsync(new WatchRunsResponse { Run = page.Runs[i], Reset = reset && i == 0 }, last: false).ConfigureAwait(false);
            }

            return head.Cursor;
        }

        /// <summary>
        /// One message per changed run, in the order of its last change in the batch, carrying that change's cursor: a
        /// watcher resuming from any of them misses nothing, since every run whose last change precedes it was sent.
        /// </summary>
        public async Task SendChangesAsync(IReadOnlyList<RunChange> changes)
        {
            if (changes.Count == 0)
            {
                return;
            }

            var last = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < changes.Count; i++)
            {
                last[changes[i].RunId] = i;
            }

            var ordered = last.OrderBy(p => p.Value).Select(p => changes[p.Value]).ToList();

            // Only runs that may be sent are read: one whose new state is outside the filter matters only if the watcher may hold it.
            var toRead = ordered
                .Where(c => !c.Deleted && (Matches(c.State) || MayHold(c.RunId)))
                .Select(c => c.RunId)
                .ToList();
            var summaries = new Dictionary<string, Run?>(StringComparer.Ordinal);
            if (toRead.Count > 0)
            {
                var read = await RpcErrors.Guard(() => store.GetRunSummariesAsync(toRead, token)).ConfigureAwait(false);
                for (var i = 0; i < toRead.Count; i++)
                {
                    summaries[toRead[i]] = read[i];
                }
            }

            var messages = new List<WatchRunsResponse>();
            foreach (var change in ordered)
            {
                var cursor = change.Cursor;
                if (change.Deleted || (summaries.TryGetValue(change.RunId, out var gone) && gone is null))
                {
                    if (MayHold(change.RunId))
                    {
                        _shown.Remove(change.RunId);
                        messages.Add(new WatchRunsResponse { DeletedRunId = change.RunId, Cursor = cursor });
                    }

                    continue;
                }

                if (summaries.GetValueOrDefault(change.RunId) is not { } run)
                {
                    continue;
                }

                if (Matches(run.State) && MatchesLabels(run))
                {
                    _shown.Add(run.Id);
                    messages.Add(new WatchRunsResponse { Run = run, Cursor = cursor });
                }
                else if (MayHold(run.Id) && (_viewKnown || MatchesLabels(run)))
                {
                    // Left the filter: sent once more with its new state, so the watcher drops it.
                    _shown.Remove(run.Id);
                    messages.Add(new WatchRunsResponse { Run = run, Cursor = cursor });
                }
            }

            for (var i = 0; i < messages.Count; i++)
            {
                await WriteAsync(messages[i], last: i == messages.Count - 1).ConfigureAwait(false);
            }
        }

        /// <summary>Writes one message; all but a batch's last are only buffered on gRPC (the JSON stream flushes each).</summary>
        public async Task WriteAsync(WatchRunsResponse message, bool last)
        {
            if (buffering)
            {
                responses.WriteOptions = last ? null : Buffered;
            }

            // Cancelled only when the caller leaves: a write cut by shutdown would reset the stream and lose the
            // UNAVAILABLE status that says where to resume.
            await responses.WriteAsync(message, callerGone).ConfigureAwait(false);
            if (message.Cursor.Length > 0)
            {
                LastCursor = message.Cursor;
            }
        }

        private bool Matches(RunState state) => request.State == RunState.Unspecified || state == request.State;

        private bool MatchesLabels(Run run) =>
            request.Labels.All(l => run.Labels.TryGetValue(l.Key, out var v) && v == l.Value);

        /// <summary>Whether the watcher may hold the run: it was shown on this stream, or the stream resumed and cannot know.</summary>
        private bool MayHold(string runId) => !_viewKnown || _shown.Contains(runId);
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
