using System.Collections.Concurrent;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Status = Grpc.Core.Status;

namespace ControlPlane.Client.Tests;

/// <summary>
/// A small in-memory RunService and AdminService served by a real gRPC server (Grpc.AspNetCore) on a loopback port:
/// a real gRPC peer for the client and the CLI. Tests drive the run's event log and inject failures.
/// </summary>
public sealed class TestRunService : IAsyncDisposable
{
    private readonly object _gate = new();
    private readonly Dictionary<string, Run> _runs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<RunEvent>> _events = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Queue<(StatusCode Code, string? Reason)>> _failures = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _calls = new(StringComparer.Ordinal);
    private readonly List<V1.Agent> _agents = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TestGrpcHost? _server;
    private int _nextRun;
    private int _cutWatchAfter = -1;
    private readonly TaskCompletionSource<Run> _firstSubmit = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The after_seq of every WatchRun call, in order.</summary>
    public ConcurrentQueue<long> WatchAfterSeqs { get; } = new();

    /// <summary>Request headers of the most recent call.</summary>
    public Metadata? LastHeaders { get; private set; }

    /// <summary>The request headers of the latest call of each method.</summary>
    public ConcurrentDictionary<string, Metadata> Headers { get; } = new(StringComparer.Ordinal);

    /// <summary>Every HTTP request's path and its cp-namespace header (null when absent), services this fake does not serve included.</summary>
    public ConcurrentQueue<(string Path, string? Namespace)> Requests { get; } = new();

    /// <summary>Deadline of the most recent call, per method name.</summary>
    public ConcurrentDictionary<string, DateTime> Deadlines { get; } = new(StringComparer.Ordinal);

    /// <summary>The server's address, e.g. http://127.0.0.1:41234.</summary>
    public string Address => _server?.Address ?? throw new InvalidOperationException("not started");

    public int Port => _server?.Port ?? throw new InvalidOperationException("not started");

    public static async Task<TestRunService> StartAsync()
    {
        var service = new TestRunService();
        service._server = await TestGrpcHost.StartAsync(
            services =>
            {
                services.AddSingleton(new Runs(service));
                services.AddSingleton(new Admin(service));
            },
            app =>
            {
                app.Use((http, next) =>
                {
                    service.Requests.Enqueue((http.Request.Path.Value ?? "", http.Request.Headers.TryGetValue("cp-namespace", out var ns) ? ns.ToString() : null));
                    return next(http);
                });
                app.MapGrpcService<Runs>();
                app.MapGrpcService<Admin>();
            });
        return service;
    }

    /// <summary>Completes with the first run created through SubmitRun.</summary>
    public Task<Run> FirstSubmitted => _firstSubmit.Task;

    public int Calls(string method) => _calls.GetValueOrDefault(method);

    /// <summary>
    /// The next <paramref name="count"/> calls of <paramref name="method"/> fail with <paramref name="code"/>, carrying a
    /// google.rpc.ErrorInfo with <paramref name="reason"/> (an ErrorReason name) when one is given.
    /// </summary>
    public void FailNext(string method, int count, StatusCode code, string? reason = null)
    {
        lock (_gate)
        {
            if (!_failures.TryGetValue(method, out var queue))
            {
                _failures[method] = queue = new Queue<(StatusCode, string?)>();
            }

            for (var i = 0; i < count; i++)
            {
                queue.Enqueue((code, reason));
            }
        }
    }

    /// <summary>The next WatchRun stream ends with UNAVAILABLE after sending <paramref name="events"/> events.</summary>
    public void CutNextWatchAfter(int events) => Volatile.Write(ref _cutWatchAfter, events);

    /// <summary>Adds a run directly, with its first event (PENDING), as if it had been submitted.</summary>
    public Run AddRun(RunSpec spec, string? idempotencyKey = null)
    {
        lock (_gate)
        {
            var run = new Run
            {
                Id = $"r-{++_nextRun}",
                Name = spec.Name,
                State = RunState.Pending,
                Spec = spec,
                IdempotencyKey = idempotencyKey ?? string.Empty,
                CreatedAt = Timestamp.FromDateTime(DateTime.UtcNow),
            };
            run.Labels.Add(spec.Labels);
            foreach (var step in spec.Steps)
            {
                run.Steps.Add(new Step { Id = step.Id, State = step.Needs.Count == 0 ? StepState.Ready : StepState.Blocked });
            }

            _runs[run.Id] = run;
            _events[run.Id] = [];
            AppendLocked(run.Id, new RunEvent { RunStateChanged = new RunStateChanged { FromState = RunState.Unspecified, ToState = RunState.Pending } });
            return run.Clone();
        }
    }

    /// <summary>Appends an event to the run's log (seq assigned here); a terminal RunStateChanged ends the run.</summary>
    public long Append(string runId, RunEvent runEvent)
    {
        lock (_gate)
        {
            return AppendLocked(runId, runEvent);
        }
    }

    public long StepEvent(string runId, string stepId, StepState from, StepState to) =>
        Append(runId, new RunEvent { StepStateChanged = new StepStateChanged { StepId = stepId, FromState = from, ToState = to, Attempt = 1, AgentId = "agent-1" } });

    public long Finish(string runId, RunState state)
    {
        lock (_gate)
        {
            var from = _runs[runId].State;
            return AppendLocked(runId, new RunEvent { RunStateChanged = new RunStateChanged { FromState = from, ToState = state } });
        }
    }

    public void AddAgent(V1.Agent agent)
    {
        lock (_gate)
        {
            _agents.Add(agent);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    private long AppendLocked(string runId, RunEvent runEvent)
    {
        var log = _events[runId];
        runEvent.RunId = runId;
        runEvent.Seq = log.Count + 1;
        runEvent.Time = Timestamp.FromDateTime(DateTime.UtcNow);
        log.Add(runEvent);
        var run = _runs[runId];
        run.LastEventSeq = runEvent.Seq;
        if (runEvent.EventCase == RunEvent.EventOneofCase.RunStateChanged)
        {
            run.State = runEvent.RunStateChanged.ToState;
        }
        else if (runEvent.EventCase == RunEvent.EventOneofCase.StepStateChanged)
        {
            var step = run.Steps.First(s => s.Id == runEvent.StepStateChanged.StepId);
            step.State = runEvent.StepStateChanged.ToState;
            step.Attempt = runEvent.StepStateChanged.Attempt;
            step.AgentId = runEvent.StepStateChanged.AgentId;
        }

        var previous = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        previous.TrySetResult();
        return runEvent.Seq;
    }

    private void Enter(string method, ServerCallContext context)
    {
        _calls.AddOrUpdate(method, 1, (_, n) => n + 1);
        LastHeaders = context.RequestHeaders;
        Headers[method] = context.RequestHeaders;
        Deadlines[method] = context.Deadline;
        lock (_gate)
        {
            if (_failures.TryGetValue(method, out var queue) && queue.TryDequeue(out var failure))
            {
                if (failure.Reason is null)
                {
                    throw new RpcException(new Status(failure.Code, $"injected {failure.Code} for {method}"));
                }

                throw new Google.Rpc.Status
                {
                    Code = (int)failure.Code,
                    Message = $"injected {failure.Code} for {method}",
                    Details = { Any.Pack(new ErrorInfo { Domain = "controlplane.v1", Reason = failure.Reason }) },
                }.ToRpcException();
            }
        }
    }

    private Run Find(string runId)
    {
        if (!_runs.TryGetValue(runId, out var run))
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"run {runId} not found"));
        }

        return run;
    }

    private Task<SubmitRunResponse> SubmitRun(SubmitRunRequest request, ServerCallContext context)
    {
        Enter("SubmitRun", context);
        var violations = new List<string>();
        var ids = request.Spec.Steps.Select(s => s.Id).ToHashSet(StringComparer.Ordinal);
        for (var i = 0; i < request.Spec.Steps.Count; i++)
        {
            var step = request.Spec.Steps[i];
            if (step.Kind != StepKind.Gate && step.Framework is not ("shell" or "dotnet"))
            {
                violations.Add($"steps[{i}].framework: unknown framework '{step.Framework}'; use shell or dotnet");
            }

            for (var j = 0; j < step.Needs.Count; j++)
            {
                if (!ids.Contains(step.Needs[j]))
                {
                    violations.Add($"steps[{i}].needs[{j}]: unknown step '{step.Needs[j]}'");
                }
            }
        }

        if (violations.Count > 0)
        {
            var details = new BadRequest();
            details.FieldViolations.AddRange(violations.Select(v =>
            {
                var colon = v.IndexOf(": ", StringComparison.Ordinal);
                return new BadRequest.Types.FieldViolation { Field = v[..colon], Description = v[(colon + 2)..] };
            }));
            throw new Google.Rpc.Status
            {
                Code = (int)Code.InvalidArgument,
                Message = "invalid run spec: " + string.Join("; ", violations),
                Details = { Any.Pack(details) },
            }.ToRpcException();
        }

        lock (_gate)
        {
            if (request.IdempotencyKey.Length > 0 && _runs.Values.FirstOrDefault(r => r.IdempotencyKey == request.IdempotencyKey) is { } existing)
            {
                return Task.FromResult(new SubmitRunResponse { Run = existing.Clone(), Created = false });
            }
        }

        var created = AddRun(request.Spec, request.IdempotencyKey);
        _firstSubmit.TrySetResult(created);
        return Task.FromResult(new SubmitRunResponse { Run = created, Created = true });
    }

    private Task<GetRunResponse> GetRun(GetRunRequest request, ServerCallContext context)
    {
        Enter("GetRun", context);
        lock (_gate)
        {
            return Task.FromResult(new GetRunResponse { Run = Find(request.RunId).Clone() });
        }
    }

    private Task<ListRunsResponse> ListRuns(ListRunsRequest request, ServerCallContext context)
    {
        Enter("ListRuns", context);
        lock (_gate)
        {
            var matching = _runs.Values
                .Where(r => request.State == RunState.Unspecified || r.State == request.State)
                .Where(r => request.Labels.All(l => r.Labels.TryGetValue(l.Key, out var v) && v == l.Value))
                .OrderByDescending(r => int.Parse(r.Id.AsSpan(2), System.Globalization.CultureInfo.InvariantCulture))
                .ToList();
            var skip = request.PageToken.Length == 0 ? 0 : int.Parse(request.PageToken, System.Globalization.CultureInfo.InvariantCulture);
            var size = request.PageSize == 0 ? 100 : request.PageSize;
            var response = new ListRunsResponse();
            foreach (var run in matching.Skip(skip).Take(size))
            {
                var summary = run.Clone();
                summary.Steps.Clear();
                response.Runs.Add(summary);
            }

            response.NextPageToken = skip + size < matching.Count ? (skip + size).ToString(System.Globalization.CultureInfo.InvariantCulture) : string.Empty;
            return Task.FromResult(response);
        }
    }

    private Task<CancelRunResponse> CancelRun(CancelRunRequest request, ServerCallContext context)
    {
        Enter("CancelRun", context);
        lock (_gate)
        {
            var run = Find(request.RunId);
            if (ControlPlaneClient.IsTerminal(run.State))
            {
                throw new RpcException(new Status(StatusCode.FailedPrecondition, $"run {run.Id} is {run.State} and cannot be cancelled"));
            }

            AppendLocked(run.Id, new RunEvent { RunStateChanged = new RunStateChanged { FromState = run.State, ToState = RunState.Cancelling, Reason = request.Reason } });
            return Task.FromResult(new CancelRunResponse { Run = run.Clone() });
        }
    }

    private Task<T> SetState<T>(string method, string runId, RunState state, ServerCallContext context)
        where T : Google.Protobuf.IMessage<T>, new()
    {
        Enter(method, context);
        lock (_gate)
        {
            var run = Find(runId);
            AppendLocked(run.Id, new RunEvent { RunStateChanged = new RunStateChanged { FromState = run.State, ToState = state } });
            var response = new T();
            response.Descriptor.FindFieldByName("run").Accessor.SetValue(response, run.Clone());
            return Task.FromResult(response);
        }
    }

    private Task<ApproveGateResponse> ApproveGate(ApproveGateRequest request, ServerCallContext context)
    {
        Enter("ApproveGate", context);
        lock (_gate)
        {
            var run = Find(request.RunId);
            var step = run.Steps.FirstOrDefault(s => s.Id == request.StepId)
                ?? throw new RpcException(new Status(StatusCode.NotFound, $"step {request.StepId} not found in run {run.Id}"));
            if (request.Decision == GateDecision.Unspecified)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, "decision: required; approve or reject"));
            }

            step.DecidedBy = request.DecidedBy;
            step.DecisionComment = request.Comment;
            AppendLocked(run.Id, new RunEvent
            {
                GateDecided = new GateDecided { StepId = step.Id, Approved = request.Decision == GateDecision.Approve, DecidedBy = request.DecidedBy, Comment = request.Comment },
            });
            return Task.FromResult(new ApproveGateResponse { Run = run.Clone() });
        }
    }

    private Task<GetStepOutputResponse> GetStepOutput(GetStepOutputRequest request, ServerCallContext context)
    {
        Enter("GetStepOutput", context);
        lock (_gate)
        {
            var run = Find(request.RunId);
            _ = run.Steps.FirstOrDefault(s => s.Id == request.StepId)
                ?? throw new RpcException(new Status(StatusCode.NotFound, $"step {request.StepId} not found in run {run.Id}"));
            return Task.FromResult(new GetStepOutputResponse
            {
                Output = new StepOutput { Data = Google.Protobuf.ByteString.CopyFromUtf8($"output of {request.StepId}\n"), Type = "text/plain" },
            });
        }
    }

    private Task<ListAgentsResponse> ListAgents(ListAgentsRequest request, ServerCallContext context)
    {
        Enter("ListAgents", context);
        lock (_gate)
        {
            var response = new ListAgentsResponse();
            response.Agents.AddRange(_agents.Select(a => a.Clone()));
            return Task.FromResult(response);
        }
    }

    private Task<DrainAgentResponse> DrainAgent(DrainAgentRequest request, ServerCallContext context)
    {
        Enter("DrainAgent", context);
        lock (_gate)
        {
            var agent = _agents.FirstOrDefault(a => a.AgentId == request.AgentId)
                ?? throw new RpcException(new Status(StatusCode.NotFound, $"agent {request.AgentId} not found"));
            agent.State = AgentState.Draining;
            return Task.FromResult(new DrainAgentResponse { Agent = agent.Clone() });
        }
    }

    // Replays after after_seq, then tails; returns once the run is terminal and its last event was written.
    private async Task WatchRun(WatchRunRequest request, IServerStreamWriter<WatchRunResponse> stream, ServerCallContext context)
    {
        Enter("WatchRun", context);
        WatchAfterSeqs.Enqueue(request.AfterSeq);
        var cutAfter = Interlocked.Exchange(ref _cutWatchAfter, -1);
        var next = request.AfterSeq;
        var sent = 0;
        lock (_gate)
        {
            Find(request.RunId);
        }

        while (true)
        {
            List<RunEvent> pending;
            Task wake;
            bool terminal;
            lock (_gate)
            {
                pending = _events[request.RunId].Where(e => e.Seq > next).ToList();
                wake = _changed.Task;
                terminal = ControlPlaneClient.IsTerminal(_runs[request.RunId].State);
            }

            foreach (var runEvent in pending)
            {
                if (sent == cutAfter)
                {
                    throw new RpcException(new Status(StatusCode.Unavailable, "the replica is shutting down"));
                }

                await stream.WriteAsync(new WatchRunResponse { Event = runEvent }, context.CancellationToken);
                sent++;
                next = runEvent.Seq;
            }

            if (terminal)
            {
                return;
            }

            if (pending.Count == 0)
            {
                await wake.WaitAsync(context.CancellationToken);
            }
        }
    }

    private sealed class Runs(TestRunService service) : RunService.RunServiceBase
    {
        public override Task<SubmitRunResponse> SubmitRun(SubmitRunRequest request, ServerCallContext context) => service.SubmitRun(request, context);

        public override Task<GetRunResponse> GetRun(GetRunRequest request, ServerCallContext context) => service.GetRun(request, context);

        public override Task<ListRunsResponse> ListRuns(ListRunsRequest request, ServerCallContext context) => service.ListRuns(request, context);

        public override Task<CancelRunResponse> CancelRun(CancelRunRequest request, ServerCallContext context) => service.CancelRun(request, context);

        public override Task<PauseRunResponse> PauseRun(PauseRunRequest request, ServerCallContext context) =>
            service.SetState<PauseRunResponse>("PauseRun", request.RunId, RunState.Paused, context);

        public override Task<ResumeRunResponse> ResumeRun(ResumeRunRequest request, ServerCallContext context) =>
            service.SetState<ResumeRunResponse>("ResumeRun", request.RunId, RunState.Running, context);

        public override Task<RetryRunResponse> RetryRun(RetryRunRequest request, ServerCallContext context) =>
            service.SetState<RetryRunResponse>("RetryRun", request.RunId, RunState.Running, context);

        public override Task<ApproveGateResponse> ApproveGate(ApproveGateRequest request, ServerCallContext context) => service.ApproveGate(request, context);

        public override Task<GetStepOutputResponse> GetStepOutput(GetStepOutputRequest request, ServerCallContext context) => service.GetStepOutput(request, context);

        public override Task WatchRun(WatchRunRequest request, IServerStreamWriter<WatchRunResponse> responseStream, ServerCallContext context) =>
            service.WatchRun(request, responseStream, context);
    }

    private sealed class Admin(TestRunService service) : AdminService.AdminServiceBase
    {
        public override Task<ListAgentsResponse> ListAgents(ListAgentsRequest request, ServerCallContext context) => service.ListAgents(request, context);

        public override Task<DrainAgentResponse> DrainAgent(DrainAgentRequest request, ServerCallContext context) => service.DrainAgent(request, context);
    }
}
