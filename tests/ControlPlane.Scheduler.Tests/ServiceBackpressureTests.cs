using System.Reflection;
using ControlPlane.Scheduler.Services;
using ControlPlane.V1;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;
using static ControlPlane.Scheduler.Tests.ServiceRunServiceTests;
using Kind = ControlPlane.V1.ConnectResponse.MessageOneofCase;
using M = ControlPlane.Scheduler.Tests.ServiceTestHost.Methods;

namespace ControlPlane.Scheduler.Tests;

/// <summary>A peer that does not read its response stream holds the scheduler's memory to a bound.</summary>
public sealed class ServiceBackpressureTests
{
    // Generous: these tests move tens of MiB through loopback on a shared machine; nothing here is a timing assertion.
    private static readonly TimeSpan Overall = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task Connect_AgentFloodsReportsAndNeverReads_SchedulerEndsTheStreamAfterABoundedBacklog()
    {
        RecordingStore recorder = null!;
        await using var host = await ServiceTestHost.StartAsync(wrapStore: s => RecordingStore.Create(s, out recorder));
        using var overall = new CancellationTokenSource(Overall);
        using var call = host.Channel.CreateCallInvoker().AsyncDuplexStreamingCall(M.Connect, null, new CallOptions(cancellationToken: overall.Token));
        await call.RequestStream.WriteAsync(new ConnectRequest { Hello = ServiceScriptedAgent.Hello("flood", slots: 1) });

        // Every report names its own attempt, never assigned, so each is answered at once with a ResultRejected (one
        // per attempt: further reports for a refused attempt are not answered again).
        static ConnectRequest Flood(int number)
        {
            var batch = new ReportBatch();
            for (var i = 0; i < AgentConnection.MaxReportBatch; i++)
            {
                batch.Reports.Add(new ConnectRequest { StepFailed = new StepFailed { FencingToken = 1_000_000 + (number * AgentConnection.MaxReportBatch) + i, Error = "never assigned" } });
            }

            return new ConnectRequest { ReportBatch = batch };
        }

        // 1000 batches are 6.5 MB of reports answered by about 27 MB of ResultRejected: far more than the outgoing bound and the
        // HTTP/2 windows both ways (the scheduler takes at most 768 KiB of reports it has not read) hold.
        const int MaxBatches = 1000;
        var sent = 0;
        Exception? refused = null;
        try
        {
            for (; sent < MaxBatches; sent++)
            {
                await call.RequestStream.WriteAsync(Flood(sent), overall.Token);
            }
        }
        catch (Exception ex) when (ex is RpcException or IOException)
        {
            // An RpcException once the call has ended, or the reset itself (HttpProtocolException) if it lands mid-write.
            refused = ex;
        }

        Assert.True(refused is not null, $"the scheduler took {sent * AgentConnection.MaxReportBatch} reports from an agent that reads none of the answers, queueing every answer");

        // The handler ended on the scheduler's side (its stream's bookkeeping ran), and the stream's end reaches the agent.
        Assert.Equal("flood", await recorder.Disconnected.Task.WaitAsync(overall.Token));
        var received = 0;
        var ended = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext(overall.Token))
            {
                received++;
            }
        });
        Assert.True(received < sent * AgentConnection.MaxReportBatch, $"{received} answers arrived for {sent} batches");

        // A reset, not a status: trailers would wait behind the answers the agent does not read. Grpc.Net.Client reports
        // the reset as CANCELLED, or as INTERNAL when it lands while a response message is half read.
        Assert.Contains(ended.StatusCode, new[] { StatusCode.Cancelled, StatusCode.Internal });
    }

    [Fact]
    public async Task WatchRun_WatcherThatDoesNotRead_SchedulerStopsReadingItsEventsAndLaterSendsThemAllInOrder()
    {
        RecordingStore recorder = null!;
        const int WatchBatch = 8;
        await using var host = await ServiceTestHost.StartAsync(configure: o => o.WatchBatch = WatchBatch, wrapStore: s => RecordingStore.Create(s, out recorder));
        using var overall = new CancellationTokenSource(Overall);

        // 24 MiB of log events (300 events of 10 lines of 8,000 characters), far beyond the HTTP/2 windows (64 KiB each way).
        const int LogEvents = 300;
        const int EventBytes = 10 * 8000;
        var run = (await host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec("chatty", Shell("a")) })).Run;
        await using (var agent = await ServiceScriptedAgent.ConnectAsync(host.Channel, ServiceScriptedAgent.Hello("a1", slots: 1)))
        {
            var assignment = (await agent.NextAsync(Kind.Assignment)).Assignment;
            await agent.SendAsync(new ConnectRequest { StepStarted = new StepStarted { FencingToken = assignment.FencingToken } });
            for (var i = 0; i < LogEvents; i++)
            {
                var log = new StepLog { FencingToken = assignment.FencingToken };
                log.Lines.Add(Enumerable.Range(0, 10).Select(l => $"{i:D4}.{l} " + new string('x', 8000 - 7)));
                await agent.SendAsync(new ConnectRequest { StepLog = log });
            }

            await agent.SendAsync(new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = assignment.FencingToken } });
            await agent.NextAsync(Kind.ResultsAccepted);
        }

        var finished = (await host.Call(M.GetRun, new GetRunRequest { RunId = run.Id })).Run;
        Assert.Equal(RunState.Succeeded, finished.State);
        var total = finished.LastEventSeq;
        Assert.True(total > LogEvents);

        // A watcher on its own connection that reads nothing: the scheduler reads the run's events only as its writes drain.
        var readBefore = recorder.EventsRead;
        using var stalledChannel = GrpcChannel.ForAddress(host.Server.Addresses[0]);
        using var stalled = stalledChannel.CreateCallInvoker().AsyncServerStreamingCall(
            M.WatchRun, null, new CallOptions(cancellationToken: overall.Token), new WatchRunRequest { RunId = run.Id });
        await recorder.EventsReadOnce.Task.WaitAsync(overall.Token);

        // A second watcher reads the whole log meanwhile, so the first one had every chance to read it too.
        var reference = await ReadToEndAsync(host.Channel, run.Id, overall.Token);
        Assert.Equal(Enumerable.Range(1, (int)total).Select(i => (long)i), reference.Select(e => e.Seq));
        var readForStalled = recorder.EventsRead - readBefore - reference.Count;

        // What the stalled watch holds: the batch in hand, and what the client's stream window and Kestrel's response buffer
        // (64 KiB each) take; counted generously as two batches and 4 MiB of events.
        var bound = (2 * WatchBatch) + (4 * 1024 * 1024 / EventBytes);
        Assert.True(readForStalled <= bound, $"the scheduler read {readForStalled} of {total} events for a watcher that reads nothing (bound {bound})");

        // Once it reads, the stalled watcher gets every event, in order, none lost.
        var late = new List<RunEvent>();
        while (await stalled.ResponseStream.MoveNext(overall.Token))
        {
            late.Add(stalled.ResponseStream.Current.Event);
        }

        Assert.Equal(reference, late);
    }

    [Fact]
    public async Task Send_AgentNotReadingItsStream_BuffersBoundedBeforeEachFlushThenClosesUnavailable()
    {
        await using var store = new EmbeddedRunStore();
        var pipeline = new ReportPipeline(store, 256, NullLogger.Instance, TimeProvider.System);
        var registration = new AgentRegistration("a1", "test", ["shell"], ["default"], new Dictionary<string, string>(), 0, [], []);
        var options = new SchedulerOptions();
        using var connection = new AgentConnection(registration, "s1", [], store, pipeline, options, NullLogger.Instance, CancellationToken.None);
        var message = new ConnectResponse { ResultRejected = new ResultRejected { FencingToken = 7, Reason = new string('r', 1000) } };
        var capacity = AgentConnection.OutgoingCapacity(registration.Slots, options.ReportBatch);

        // A full channel before the stream starts: a burst as large as the bound allows.
        for (var i = 0; i < capacity; i++)
        {
            connection.Send(message);
        }

        var responses = new StalledWriter();
        var serving = connection.RunAsync(new SilentReader(), responses);
        var sent = capacity;
        while (connection.ClosedReason is null && sent < 100 * capacity)
        {
            connection.Send(message);
            sent++;
        }

        var closed = await Assert.ThrowsAsync<RpcException>(() => serving.WaitAsync(ServiceTestHost.Timeout));

        // The writer buffered at most MaxUnflushedBytes (64 KiB) before a flush, which waited for a window never granted.
        Assert.True(responses.MostUnflushedBytes <= (64 * 1024) + message.CalculateSize(), $"{responses.MostUnflushedBytes} bytes were written without a flush");
        Assert.True(sent <= capacity + responses.Writes + 1, $"{sent} messages were queued for an agent that read none");
        Assert.True(responses.WriteCancelled);
        Assert.Equal(StatusCode.Unavailable, closed.StatusCode);
        Assert.Equal($"the agent is not reading its stream: {capacity} messages wait to be sent to it; reconnect", closed.Status.Detail);
    }

    private static async Task<List<RunEvent>> ReadToEndAsync(GrpcChannel channel, string runId, CancellationToken token)
    {
        using var watch = channel.CreateCallInvoker().AsyncServerStreamingCall(
            M.WatchRun, null, new CallOptions(cancellationToken: token), new WatchRunRequest { RunId = runId });
        var events = new List<RunEvent>();
        while (await watch.ResponseStream.MoveNext(token))
        {
            events.Add(watch.ResponseStream.Current.Event);
        }

        return events;
    }

    /// <summary>An agent that sends nothing after Hello: MoveNext waits until the stream is closed.</summary>
    private sealed class SilentReader : IAsyncStreamReader<ConnectRequest>
    {
        public ConnectRequest Current => throw new InvalidOperationException("nothing was read");

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return false;
        }
    }

    /// <summary>A response stream whose reader never reads: buffered writes complete, a flush waits until cancelled.</summary>
    private sealed class StalledWriter : IServerStreamWriter<ConnectResponse>
    {
        private int _unflushed;

        public WriteOptions? WriteOptions { get; set; }

        public int Writes { get; private set; }

        public int MostUnflushedBytes { get; private set; }

        public bool WriteCancelled { get; private set; }

        public Task WriteAsync(ConnectResponse message) => WriteAsync(message, CancellationToken.None);

        public async Task WriteAsync(ConnectResponse message, CancellationToken cancellationToken)
        {
            Writes++;
            _unflushed += message.CalculateSize();
            MostUnflushedBytes = Math.Max(MostUnflushedBytes, _unflushed);
            if (WriteOptions is { } options && options.Flags.HasFlag(WriteFlags.BufferHint))
            {
                return;
            }

            _unflushed = 0;

            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                WriteCancelled = true;
                throw;
            }
        }
    }

    /// <summary>Passes every call to the embedded store, counting the events read and noting agents disconnected.</summary>
    public class RecordingStore : DispatchProxy
    {
        private IRunStore _inner = null!;
        private long _eventsRead;

        /// <summary>Events returned by every ReadEventsAsync so far.</summary>
        public long EventsRead => Interlocked.Read(ref _eventsRead);

        /// <summary>Completes when a ReadEventsAsync first returns events.</summary>
        public TaskCompletionSource EventsReadOnce { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Completes with the first agent whose stream's end was recorded.</summary>
        public TaskCompletionSource<string> Disconnected { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public static IRunStore Create(IRunStore inner, out RecordingStore recorder)
        {
            var proxy = Create<IRunStore, RecordingStore>();
            recorder = (RecordingStore)(object)proxy;
            recorder._inner = inner;
            return proxy;
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            var result = targetMethod!.Invoke(_inner, args);
            return targetMethod.Name switch
            {
                nameof(IRunStore.ReadEventsAsync) => CountAsync((Task<IReadOnlyList<RunEvent>>)result!),
                nameof(IRunStore.DisconnectAgentAsync) => NoteAsync((Task)result!, (string)args![0]!),
                _ => result,
            };
        }

        private async Task<IReadOnlyList<RunEvent>> CountAsync(Task<IReadOnlyList<RunEvent>> read)
        {
            var events = await read;
            Interlocked.Add(ref _eventsRead, events.Count);
            if (events.Count > 0)
            {
                EventsReadOnce.TrySetResult();
            }

            return events;
        }

        private async Task NoteAsync(Task disconnect, string agentId)
        {
            await disconnect;
            Disconnected.TrySetResult(agentId);
        }
    }
}
