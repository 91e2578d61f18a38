using System.Diagnostics;
using ControlPlane.Agent;
using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Xunit;
using Methods = ControlPlane.Scheduler.Tests.ServiceTestHost.Methods;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

/// <summary>
/// One trace per run, end to end: a real scheduler and a real agent in this process, their spans taken by one
/// in-memory exporter. The run joins the caller's trace; each attempt is a scheduler span; the agent's execution span
/// is its child; a shell step sees TRACEPARENT naming that span, and a dotnet handler runs inside it.
/// </summary>
public sealed class TraceTests : IAsyncLifetime
{
    // What a caller that traces itself sends: the run belongs to this trace.
    private const string CallerTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    private const string CallerTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";

    private readonly List<Activity> _spans = [];
    private readonly SemaphoreSlim _ended = new(0);
    private TracerProvider _tracing = null!;
    private ServiceTestHost _host = null!;
    private AgentWorker _agent = null!;
    private Task _agentRun = null!;
    private readonly CancellationTokenSource _stopAgent = new();
    private readonly string _workRoot = Directory.CreateTempSubdirectory("cp-trace-").FullName;

    public async Task InitializeAsync()
    {
        _tracing = Sdk.CreateTracerProviderBuilder()
            .AddSource("ControlPlane.Scheduler", "ControlPlane.Agent")
            .AddAspNetCoreInstrumentation()
            .AddInMemoryExporter(_spans)
            .AddProcessor(new EndSignal(_ended))
            .Build()!;
        _host = await ServiceTestHost.StartAsync();
        var options = new AgentOptions { SchedulerAddress = _host.Server.Addresses[0].ToString(), AgentId = "trace-agent", Slots = 2, WorkRoot = _workRoot };
        var dotnet = new DotnetFramework().Register("current-span", _ => Task.FromResult(StepHandlerResult.FromString(Activity.Current?.Id ?? "none")));
        _agent = new AgentWorker(options, AgentRunner.CreateDefaultFrameworks(options, dotnet: dotnet));
        _agentRun = _agent.RunAsync(_stopAgent.Token);
        await _agent.Connected.WaitAsync(ServiceTestHost.Timeout);
    }

    public async Task DisposeAsync()
    {
        await _stopAgent.CancelAsync();
        await _agentRun.WaitAsync(ServiceTestHost.Timeout);
        _agent.Dispose();
        await _host.DisposeAsync();
        _tracing.Dispose();
        _stopAgent.Dispose();
        _ended.Dispose();
        Directory.Delete(_workRoot, recursive: true);
    }

    [Fact]
    public async Task Run_WithShellDotnetAndRetriedSteps_IsOneTraceOfAttemptSpansWithAgentChildren()
    {
        var spec = Run(
            Shell("shell").With(s => s.Command = "printf '%s' \"$TRACEPARENT\" > \"$CP_OUTPUT_FILE\""),
            Shell("flaky").With(s =>
            {
                s.Command = "test \"$CP_ATTEMPT\" -ge 2";
                s.Retry = new RetryPolicy { MaxAttempts = 2, Backoff = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(10)) };
            }),
            new StepSpec { Id = "handler", Framework = "dotnet", Handler = "current-span" });

        var submitted = await _host.Channel.CreateCallInvoker().AsyncUnaryCall(
            Methods.SubmitRun, null, new CallOptions(new Metadata { { "traceparent", CallerTraceParent } }, DateTime.UtcNow + ServiceTestHost.Timeout),
            new SubmitRunRequest { Spec = spec }).ResponseAsync;
        var runId = submitted.Run.Id;
        var run = await _host.WaitForRunAsync(runId, r => r.State is RunState.Succeeded or RunState.Failed);
        Assert.Equal(RunState.Succeeded, run.State);

        // The run joined the caller's trace, and says so.
        Assert.Equal(CallerTraceId, run.TraceId);
        Assert.Equal(CallerTraceId, Assert.Single((await _host.Call(Methods.ListRuns, new ListRunsRequest())).Runs, r => r.Id == runId).TraceId);

        // Four attempts (flaky ran twice), each a scheduler span in the run's trace with an agent span as its child.
        var attempts = await SpansAsync("ControlPlane.Scheduler", runId, 4);
        var executions = await SpansAsync("ControlPlane.Agent", runId, 4);
        Assert.All(attempts.Concat(executions), s => Assert.Equal(CallerTraceId, s.TraceId.ToHexString()));
        foreach (var attempt in attempts)
        {
            var child = Assert.Single(executions, e => e.ParentSpanId == attempt.SpanId);
            Assert.Equal(attempt.GetTagItem("controlplane.step.id"), child.GetTagItem("controlplane.step.id"));
            Assert.Equal(attempt.GetTagItem("controlplane.attempt"), child.GetTagItem("controlplane.attempt"));
            Assert.Equal("trace-agent", attempt.GetTagItem("controlplane.agent.id"));
            Assert.Equal("default", attempt.GetTagItem("controlplane.queue"));
        }

        var flaky = attempts.Where(a => (string?)a.GetTagItem("controlplane.step.id") == "flaky").OrderBy(a => a.GetTagItem("controlplane.attempt")).ToList();
        Assert.Equal([1, 2], flaky.Select(a => (int)a.GetTagItem("controlplane.attempt")!));
        Assert.Equal(["failed", "succeeded"], flaky.Select(a => (string?)a.GetTagItem("controlplane.outcome")));
        Assert.Equal(ActivityStatusCode.Error, flaky[0].Status);
        Assert.NotEqual(flaky[0].SpanId, flaky[1].SpanId);

        // The shell step saw TRACEPARENT naming the agent's execution span; the handler ran with that span current.
        Assert.Equal(ExecutionOf("shell").Id, await OutputAsync(runId, "shell"));
        Assert.Equal(ExecutionOf("handler").Id, await OutputAsync(runId, "handler"));

        Activity ExecutionOf(string step) => Assert.Single(executions, e => (string?)e.GetTagItem("controlplane.step.id") == step);
    }

    [Fact]
    public async Task SubmitRun_WithoutCallerTrace_StartsTheRunsOwnTraceAtTheServerSpan()
    {
        var submitted = await _host.Call(Methods.SubmitRun, new SubmitRunRequest { Spec = Run(Shell("a")) });
        var runId = submitted.Run.Id;
        await _host.WaitForRunAsync(runId, r => r.State == RunState.Succeeded);

        Assert.Matches("^[0-9a-f]{32}$", submitted.Run.TraceId);
        Assert.NotEqual(CallerTraceId, submitted.Run.TraceId);
        var attempt = Assert.Single(await SpansAsync("ControlPlane.Scheduler", runId, 1));
        Assert.Equal(submitted.Run.TraceId, attempt.TraceId.ToHexString());

        // Its parent is the SubmitRun server span, the root of the run's trace.
        var server = await SpanAsync(s => s.SpanId == attempt.ParentSpanId);
        Assert.Equal(ActivityKind.Server, server.Kind);
        Assert.Equal(default, server.ParentSpanId);
    }

    private async Task<string> OutputAsync(string runId, string stepId) =>
        (await _host.Call(Methods.GetStepOutput, new GetStepOutputRequest { RunId = runId, StepId = stepId })).Output.Data.ToStringUtf8();

    /// <summary>The ended spans of <paramref name="source"/> for the run, once there are <paramref name="count"/> of them.</summary>
    private async Task<List<Activity>> SpansAsync(string source, string runId, int count)
    {
        using var deadline = new CancellationTokenSource(ServiceTestHost.Timeout);
        while (true)
        {
            List<Activity> found;
            lock (_spans)
            {
                found = [.. _spans.Where(s => s.Source.Name == source && (string?)s.GetTagItem("controlplane.run.id") == runId)];
            }

            if (found.Count >= count)
            {
                Assert.Equal(count, found.Count);
                return found;
            }

            await _ended.WaitAsync(deadline.Token);
        }
    }

    private async Task<Activity> SpanAsync(Func<Activity, bool> match)
    {
        using var deadline = new CancellationTokenSource(ServiceTestHost.Timeout);
        while (true)
        {
            lock (_spans)
            {
                if (_spans.FirstOrDefault(match) is { } span)
                {
                    return span;
                }
            }

            await _ended.WaitAsync(deadline.Token);
        }
    }

    /// <summary>Wakes the test each time a span ends (after the exporter, added before it, has taken it).</summary>
    private sealed class EndSignal(SemaphoreSlim ended) : BaseProcessor<Activity>
    {
        public override void OnEnd(Activity data) => ended.Release();
    }
}
