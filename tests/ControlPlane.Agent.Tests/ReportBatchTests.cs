using ControlPlane.Agent.Internal;
using ControlPlane.V1;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Agent.Tests;

public sealed class ReportBatchTests : IAsyncLifetime
{
    private readonly TempDirectory _dir = new();
    private readonly DotnetFramework _dotnet = new(abandonAfter: TimeSpan.FromSeconds(5));
    private readonly CancellationTokenSource _stop = new();
    private FakeScheduler _scheduler = null!;

    public async Task InitializeAsync() => _scheduler = await FakeScheduler.StartAsync();

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _scheduler.DisposeAsync();
        _dir.Dispose();
    }

    private AgentOptions Options(int slots = 64) => new()
    {
        SchedulerAddress = _scheduler.Address,
        AgentId = "agent-1",
        Slots = slots,
        WorkRoot = _dir.Path,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        MaxReconnectDelay = TimeSpan.FromMilliseconds(200),
    };

    [Fact]
    public async Task Session_BacklogToBatchingScheduler_LeavesAsOneReportBatchInOrder()
    {
        var (session, _) = SessionWithBacklog(10);
        var running = session.RunAsync(_stop.Token).AsTask();

        var connection = await WelcomeAsync(maxReportBatch: 256);
        await connection.CompletedAsync(10);

        var batch = Assert.Single(connection.Batches);
        Assert.Equal(Enumerable.Range(1, 10).Select(i => $"out-{i}"), batch.Reports.Select(r => r.StepCompleted.Output.ToStringUtf8()));
        await DrainAndEndAsync(session, connection, running);
    }

    [Fact]
    public async Task Session_BacklogToSchedulerWithoutBatches_SentOneByOne()
    {
        var (session, _) = SessionWithBacklog(10);
        var running = session.RunAsync(_stop.Token).AsTask();

        var connection = await WelcomeAsync(maxReportBatch: 0);
        await connection.CompletedAsync(10);

        Assert.Empty(connection.Batches);
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), connection.Received.Where(m => m.StepCompleted is not null).Select(m => m.StepCompleted.FencingToken));
        await DrainAndEndAsync(session, connection, running);
    }

    [Fact]
    public async Task Session_BacklogBeyondTheSchedulersLimit_SplitIntoBatchesOfAtMostTheLimit()
    {
        var (session, attempts) = SessionWithBacklog(10);
        var running = session.RunAsync(_stop.Token).AsTask();

        var connection = await WelcomeAsync(maxReportBatch: 4);
        await connection.CompletedAsync(10);

        Assert.Equal([4, 4, 2], connection.Batches.Select(b => b.Reports.Count));
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), connection.Received.Where(m => m.StepCompleted is not null).Select(m => m.StepCompleted.FencingToken));
        await DrainAndEndAsync(session, connection, running);
        Assert.True(attempts.IsEmpty);
    }

    [Fact]
    public async Task Agent_BatchingScheduler_ManyStepsAndLogLinesAllDeliveredInOrder()
    {
        _dotnet.Register("noop", _ => Task.FromResult(StepHandlerResult.FromString("ok")));
        var worker = new AgentWorker(Options(), [new ShellFramework(TimeSpan.FromSeconds(1)), _dotnet]);
        var running = worker.RunAsync(_stop.Token);
        var connection = await WelcomeAsync(maxReportBatch: 256);

        await connection.AssignAsync(1, new StepSpec { Id = "chatty", Framework = "shell", Command = "i=0; while [ $i -lt 2000 ]; do echo \"line $i\"; i=$((i+1)); done" });
        for (var token = 2; token <= 60; token++)
        {
            await connection.AssignAsync(token, new StepSpec { Id = $"n{token}", Framework = "dotnet", Handler = "noop" });
        }

        await connection.CompletedAsync(1);
        for (var token = 2; token <= 60; token++)
        {
            Assert.Equal("ok", (await connection.CompletedAsync(token)).Output.ToStringUtf8());
        }

        var lines = connection.Received.Where(m => m.StepLog?.FencingToken == 1).SelectMany(m => m.StepLog.Lines).ToList();
        Assert.Equal(Enumerable.Range(0, 2000).Select(i => $"line {i}"), lines);
        Assert.NotEmpty(connection.Batches);
        Assert.All(connection.Batches, b => Assert.InRange(b.Reports.Count, 2, 256));
        Assert.All(connection.Batches.SelectMany(b => b.Reports), r => Assert.DoesNotContain(r.MessageCase, new[] { ConnectRequest.MessageOneofCase.Heartbeat, ConnectRequest.MessageOneofCase.SlotsChanged, ConnectRequest.MessageOneofCase.Hello, ConnectRequest.MessageOneofCase.ReportBatch }));
        await connection.SendAsync(new ConnectResponse { Drain = new Drain() });
        await running.WithTimeout();
        Assert.Equal(0, worker.RunningAttempts);
    }

    /// <summary>The session ends cleanly only once every written result's attempt has been forgotten.</summary>
    private static async Task DrainAndEndAsync(SchedulerSession session, FakeConnection connection, Task<bool> running)
    {
        session.Drain("test over");
        Assert.True(await running.WithTimeout());
        await connection.Ended.WithTimeout();
    }

    private async Task<FakeConnection> WelcomeAsync(int maxReportBatch)
    {
        var connection = await _scheduler.NextConnectionAsync();
        connection.MaxReportBatch = maxReportBatch;
        await connection.HelloAsync();
        await connection.WelcomeAsync();
        return connection;
    }

    /// <summary>A session whose outbox already holds the results of <paramref name="count"/> finished attempts (tokens 1..count), as after an outage.</summary>
    private (SchedulerSession Session, AttemptTable Attempts) SessionWithBacklog(int count)
    {
        var options = Options();
        var frameworks = new Dictionary<string, IComputeFramework>(StringComparer.Ordinal) { ["dotnet"] = _dotnet };
        var attempts = new AttemptTable(options.AgentId, options.Slots);
        var outbox = new Outbox(options.MaxBufferedReports);
        var runner = new AttemptRunner(options, frameworks, attempts, outbox, NullLogger.Instance);
        for (var token = 1; token <= count; token++)
        {
            string? refusal = null;
            var assignment = new Assignment { RunId = "run-1", StepId = $"s{token}", Attempt = 1, FencingToken = token, Spec = new StepSpec { Framework = "dotnet" } };
            var attempt = attempts.Admit(assignment, 1, ref refusal)!;
            Assert.True(attempts.Finish(attempt));
            outbox.Enqueue(new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = token, Output = ByteString.CopyFromUtf8($"out-{token}") } });
        }

        return (new SchedulerSession(options, frameworks.Values, attempts, runner, outbox, NullLogger.Instance, TimeProvider.System), attempts);
    }
}
