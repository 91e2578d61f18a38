using System.Text;
using ControlPlane.Tests.Support;
using ControlPlane.V1;

namespace ControlPlane.Agent.Tests;

public sealed class AgentWorkerTests : IAsyncLifetime
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

    private AgentOptions Options(int slots = 2, TimeSpan? shutdownGrace = null) => new()
    {
        SchedulerAddress = _scheduler.Address,
        AgentId = "agent-1",
        Slots = slots,
        Queues = ["default", "gpu"],
        Labels = new Dictionary<string, string> { ["zone"] = "a" },
        WorkRoot = _dir.Path,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        MaxReconnectDelay = TimeSpan.FromMilliseconds(200),
        ShutdownGracePeriod = shutdownGrace ?? TimeSpan.FromSeconds(30),
        KillGracePeriod = TimeSpan.FromSeconds(1),
    };

    private (AgentWorker Worker, Task Running) Start(AgentOptions? options = null)
    {
        var worker = new AgentWorker(options ?? Options(), [new ShellFramework(TimeSpan.FromSeconds(1)), _dotnet]);
        return (worker, worker.RunAsync(_stop.Token));
    }

    private async Task<FakeConnection> ConnectAsync(TimeSpan? heartbeat = null)
    {
        var connection = await _scheduler.NextConnectionAsync();
        await connection.HelloAsync();
        await connection.WelcomeAsync(heartbeat);
        return connection;
    }

    private static StepSpec Shell(string id, string command) => new() { Id = id, Framework = "shell", Command = command };

    private static StepSpec Dotnet(string id, string handler) => new() { Id = id, Framework = "dotnet", Handler = handler };

    /// <summary>A handler that runs until the test releases it (or its token fires), telling the test when it started.</summary>
    private sealed class Gate
    {
        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<string> Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<StepHandlerResult> HandleAsync(IStepContext context)
        {
            // Not disposed with the handler: cancellation may resume the handler inline before this callback runs.
            context.CancellationToken.Register(() => Cancelled.TrySetResult());
            Started.TrySetResult();
            var output = await Release.Task.WaitAsync(context.CancellationToken);
            return StepHandlerResult.FromString(output);
        }
    }

    [Fact]
    public async Task RunAsync_FirstSchedulerAddressDead_ConnectsToTheNextAndBackAfterADrop()
    {
        // A loopback port nobody listens on: a replica that died.
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var dead = $"http://127.0.0.1:{((System.Net.IPEndPoint)listener.LocalEndpoint).Port}";
        listener.Stop();
        var options = Options();
        options.SchedulerAddress = $"{dead},{_scheduler.Address}";
        Start(options);

        var first = await ConnectAsync();
        first.Abort();
        var second = await _scheduler.NextConnectionAsync();
        var hello = await second.HelloAsync();

        Assert.Equal("agent-1", hello.AgentId);
    }

    [Fact]
    public async Task RunAsync_Connects_HelloAnnouncesIdentityFrameworksHandlersAndSlots()
    {
        _dotnet.Register("resize-images", _ => Task.FromResult(StepHandlerResult.Empty));
        var (worker, _) = Start();

        var connection = await _scheduler.NextConnectionAsync();
        var hello = await connection.HelloAsync();
        await connection.WelcomeAsync();
        await worker.Connected.WithTimeout();

        Assert.Equal("agent-1", hello.AgentId);
        Assert.Equal(Environment.MachineName, hello.Host);
        Assert.Equal(["dotnet", "shell"], hello.Frameworks);
        Assert.Equal(["resize-images"], hello.Handlers);
        Assert.Equal(["default", "gpu"], hello.Queues);
        Assert.Equal("a", hello.Labels["zone"]);
        Assert.Equal(2, hello.Slots);
        Assert.Empty(hello.RunningAttempts);
        Assert.NotEmpty(hello.Version);
    }

    [Fact]
    public async Task RunAsync_NamespaceAndToken_ConnectCarriesCpNamespaceAndAuthorization()
    {
        var options = Options();
        options.Token = "cpt_agent-0123456789";
        options.Namespace = "team-a";
        Start(options);

        var connection = await _scheduler.NextConnectionAsync();
        await connection.HelloAsync();

        Assert.Equal("team-a", connection.RequestHeaders.GetValue("cp-namespace"));
        Assert.Equal("Bearer cpt_agent-0123456789", connection.RequestHeaders.GetValue("authorization"));
    }

    [Fact]
    public async Task RunAsync_NoNamespace_ConnectCarriesNoNamespaceHeader()
    {
        Start();

        var connection = await _scheduler.NextConnectionAsync();
        await connection.HelloAsync();

        Assert.Null(connection.RequestHeaders.Get("cp-namespace"));
        Assert.Null(connection.RequestHeaders.Get("authorization"));
    }

    [Fact]
    public async Task Assignment_ShellStep_StreamsStartedLogProgressThenCompletedWithOutputAndUsage()
    {
        Start();
        var connection = await ConnectAsync();

        await connection.AssignAsync(7, Shell("list", "echo hello; echo '::cp progress 50 half'; echo '::cp usage tokens=3'; printf out > \"$CP_OUTPUT_FILE\""));
        var completed = await connection.CompletedAsync(7);

        Assert.Equal("out", completed.Output.ToStringUtf8());
        Assert.Equal(3, completed.Usage["tokens"]);
        var started = connection.IndexOf(m => m.StepStarted?.FencingToken == 7);
        var log = connection.IndexOf(m => m.StepLog?.FencingToken == 7 && m.StepLog.Lines.Contains("hello"));
        var progress = connection.IndexOf(m => m.StepProgress?.FencingToken == 7 && m.StepProgress.Percent == 50 && m.StepProgress.Message == "half");
        var done = connection.IndexOf(m => m.StepCompleted?.FencingToken == 7);
        Assert.True(started >= 0 && log > started && progress > started && done > log && done > progress, $"order started={started} log={log} progress={progress} done={done}");
    }

    [Fact]
    public async Task Assignment_ShellStepPrintsItsSecret_EnvironmentHasItAndEveryReportMasksIt()
    {
        Start();
        var connection = await ConnectAsync();
        var assignment = new Assignment { RunId = "run-1", StepId = "leak", Attempt = 1, FencingToken = 21 };
        assignment.Spec = Shell("leak", "echo \"out $DB_PASSWORD\"; echo \"err $DB_PASSWORD\" >&2; echo \"::cp progress 10 at $DB_PASSWORD\"; printf \"{\\\"v\\\":\\\"$DB_PASSWORD\\\"}\" > \"$CP_OUTPUT_FILE\"");
        assignment.Spec.Secrets.Add("db-password");
        assignment.Secrets["db-password"] = Google.Protobuf.ByteString.CopyFromUtf8("s3cr3t-Value");

        await connection.SendAsync(new ConnectResponse { Assignment = assignment });
        var completed = await connection.CompletedAsync(21);

        Assert.Equal("{\"v\":\"***\"}", completed.Output.ToStringUtf8());
        Assert.Contains(connection.Received, m => m.StepLog?.Lines.Contains("out ***") == true);
        Assert.Contains(connection.Received, m => m.StepLog?.Lines.Contains("err ***") == true);
        Assert.Contains(connection.Received, m => m.StepProgress?.Message == "at ***");
        Assert.DoesNotContain(connection.Received, m => m.ToString().Contains("s3cr3t", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Assignment_ShellStepFailsWithItsSecret_ErrorMasked()
    {
        Start();
        var connection = await ConnectAsync();
        var assignment = new Assignment { RunId = "run-1", StepId = "leak", Attempt = 1, FencingToken = 22 };
        assignment.Spec = Shell("leak", "echo \"cannot log in with $API_KEY\" >&2; exit 3");
        assignment.Spec.Secrets.Add("api.key");
        assignment.Secrets["api.key"] = Google.Protobuf.ByteString.CopyFromUtf8("s3cr3t-Value");

        await connection.SendAsync(new ConnectResponse { Assignment = assignment });
        var failed = await connection.FailedAsync(22);

        Assert.Contains("***", failed.Error, StringComparison.Ordinal);
        Assert.DoesNotContain(connection.Received, m => m.ToString().Contains("s3cr3t", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Assignment_NamedSecretMissing_FailsSayingWhich()
    {
        Start();
        var connection = await ConnectAsync();
        var spec = Shell("needs", "true");
        spec.Secrets.Add("gone");

        await connection.AssignAsync(23, spec);
        var failed = await connection.FailedAsync(23);

        Assert.Contains("secret 'gone' is not available", failed.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Assignment_DotnetStep_ReadsSecretsFromItsContext_ResultMasked()
    {
        _dotnet.Register("read-secret", context => Task.FromResult(StepHandlerResult.FromString("got " + context.Secrets["db-password"])));
        Start();
        var connection = await ConnectAsync();
        var assignment = new Assignment { RunId = "run-1", StepId = "read", Attempt = 1, FencingToken = 24, Spec = Dotnet("read", "read-secret") };
        assignment.Spec.Secrets.Add("db-password");
        assignment.Secrets["db-password"] = Google.Protobuf.ByteString.CopyFromUtf8("s3cr3t-Value");

        await connection.SendAsync(new ConnectResponse { Assignment = assignment });
        var completed = await connection.CompletedAsync(24);

        Assert.Equal("got ***", completed.Output.ToStringUtf8());
    }

    [Fact]
    public async Task Assignment_FailingShellStep_ReportsRetryableFailure()
    {
        Start();
        var connection = await ConnectAsync();

        await connection.AssignAsync(8, Shell("bad", "echo broken >&2; exit 4"));
        var failed = await connection.FailedAsync(8);

        Assert.False(failed.Permanent);
        Assert.False(failed.Cancelled);
        Assert.Contains("code 4", failed.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Assignment_WithCheckpointAndInputs_GivenToTheStep()
    {
        Start();
        var connection = await ConnectAsync();
        var assignment = new Assignment
        {
            RunId = "run-1",
            StepId = "resume",
            Attempt = 2,
            FencingToken = 9,
            Spec = Shell("resume", "printf '%s|%s|%s' \"$(cat \"$CP_CHECKPOINT_FILE\")\" \"$(cat \"$CP_INPUTS_DIR/list\")\" \"$CP_ATTEMPT\" > \"$CP_OUTPUT_FILE\""),
            Checkpoint = Google.Protobuf.ByteString.CopyFromUtf8("page=3"),
            HasCheckpoint = true,
        };
        assignment.Inputs.Add(new StepInput { StepId = "list", Data = Google.Protobuf.ByteString.CopyFromUtf8("a.png") });

        await connection.SendAsync(new ConnectResponse { Assignment = assignment });
        var completed = await connection.CompletedAsync(9);

        Assert.Equal("page=3|a.png|2", completed.Output.ToStringUtf8());
    }

    [Fact]
    public async Task Heartbeat_WhileStepBlocksItsThread_KeepsListingTheAttempt()
    {
        using var block = new ManualResetEventSlim();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _dotnet.Register("cpu-bound", _ =>
        {
            started.TrySetResult();
            block.Wait(TimeSpan.FromSeconds(30));
            return Task.FromResult(StepHandlerResult.FromString("done"));
        });
        Start();
        var connection = await ConnectAsync(heartbeat: TimeSpan.FromMilliseconds(50));

        await connection.AssignAsync(11, Dotnet("crunch", "cpu-bound"));
        await started.Task.WithTimeout();
        var before = connection.Received.Count(m => m.Heartbeat?.FencingTokens.Contains(11) == true);
        await connection.WaitForCountAsync(m => m.Heartbeat?.FencingTokens.Contains(11) == true, before + 3);
        block.Set();
        await connection.CompletedAsync(11);

        Assert.False(started.Task.IsFaulted);
    }

    [Fact]
    public async Task CancelAttempt_ShellStep_KillsProcessTreeAndReportsCancelled()
    {
        Start();
        var connection = await ConnectAsync();
        await connection.AssignAsync(12, Shell("long", "sleep 1000 & echo \"child $!\"; wait"));
        var log = await connection.WaitForAsync(m => m.StepLog?.FencingToken == 12 && m.StepLog.Lines.Any(l => l.StartsWith("child ", StringComparison.Ordinal)));
        var grandchild = ProcessProbe.ParseChildPid(log.StepLog.Lines.First(l => l.StartsWith("child ", StringComparison.Ordinal)));
        Assert.True(ProcessProbe.IsRunning(grandchild));

        await connection.SendAsync(new ConnectResponse { CancelAttempt = new CancelAttempt { FencingToken = 12, Reason = "run cancelled" } });
        var failed = await connection.FailedAsync(12);

        Assert.True(failed.Cancelled);
        Assert.False(failed.TimedOut);
        Assert.False(ProcessProbe.IsRunning(grandchild), $"grandchild {grandchild} still runs");
    }

    [Fact]
    public async Task Reconnect_StreamDropped_ReannouncesRunningAttemptAndDeliversItsResult()
    {
        var gate = new Gate();
        _dotnet.Register("wait", gate.HandleAsync);
        var (worker, _) = Start();
        var first = await ConnectAsync();
        await first.AssignAsync(13, Dotnet("slow", "wait"));
        await gate.Started.Task.WithTimeout();

        first.Abort();
        var second = await _scheduler.NextConnectionAsync();
        var hello = await second.HelloAsync();
        gate.Release.SetResult("finished offline");
        await second.WelcomeAsync();
        var completed = await second.CompletedAsync(13);

        var announced = Assert.Single(hello.RunningAttempts);
        Assert.Equal((13L, "run-1", "slow", 1), (announced.FencingToken, announced.RunId, announced.StepId, announced.Attempt));
        Assert.Equal("finished offline", completed.Output.ToStringUtf8());
        Assert.False(gate.Cancelled.Task.IsCompleted);
        Assert.Equal(0, worker.RunningAttempts);
    }

    [Fact]
    public async Task Reconnect_SchedulerRefusesFirstConnects_RetriesWithBackoffUntilWelcomed()
    {
        _scheduler.RejectNext(2);
        var (worker, _) = Start();

        var connection = await ConnectAsync();
        await worker.Connected.WithTimeout();

        Assert.Equal("agent-1", (await connection.HelloAsync()).AgentId);
    }

    [Fact]
    public async Task Welcome_RevokesRunningAttempt_StopsItAndNeverReportsIt()
    {
        var gate = new Gate();
        _dotnet.Register("wait", gate.HandleAsync);
        var (_, running) = Start();
        var first = await ConnectAsync();
        await first.AssignAsync(14, Dotnet("slow", "wait"));
        await gate.Started.Task.WithTimeout();

        first.Abort();
        var second = await _scheduler.NextConnectionAsync();
        await second.HelloAsync();
        await second.WelcomeAsync(revoked: 14);
        await gate.Cancelled.Task.WithTimeout();
        await second.SendAsync(new ConnectResponse { Drain = new Drain { Reason = "test over" } });
        await running.WithTimeout();

        Assert.DoesNotContain(second.Received, m => m.StepCompleted?.FencingToken == 14 || m.StepFailed?.FencingToken == 14);
    }

    [Fact]
    public async Task Drain_FromScheduler_FinishesRunningStepRefusesNewOnesAndExits()
    {
        var gate = new Gate();
        _dotnet.Register("wait", gate.HandleAsync);
        var (worker, running) = Start();
        var connection = await ConnectAsync();
        await connection.AssignAsync(15, Dotnet("slow", "wait"));
        await gate.Started.Task.WithTimeout();

        await connection.SendAsync(new ConnectResponse { Drain = new Drain { Reason = "maintenance" } });
        await connection.WaitForAsync(m => m.SlotsChanged is { Slots: 0 });
        await connection.AssignAsync(16, Shell("late", "true"));
        var refused = await connection.FailedAsync(16);
        gate.Release.SetResult("ok");
        var completed = await connection.CompletedAsync(15);
        await running.WithTimeout();
        await connection.Ended.WithTimeout();

        Assert.True(worker.IsDraining);
        Assert.Contains("draining", refused.Error, StringComparison.Ordinal);
        Assert.False(refused.Permanent);
        Assert.Equal("ok", completed.Output.ToStringUtf8());
    }

    [Fact]
    public async Task RunAsync_StopRequested_DrainsAndReturnsAfterTheStepFinishes()
    {
        var gate = new Gate();
        _dotnet.Register("wait", gate.HandleAsync);
        var (_, running) = Start();
        var connection = await ConnectAsync();
        await connection.AssignAsync(17, Dotnet("slow", "wait"));
        await gate.Started.Task.WithTimeout();

        await _stop.CancelAsync();
        await connection.WaitForAsync(m => m.SlotsChanged is { Slots: 0 });
        Assert.False(running.IsCompleted);
        gate.Release.SetResult("ok");
        await connection.CompletedAsync(17);
        await running.WithTimeout();

        Assert.False(gate.Cancelled.Task.IsCompleted);
    }

    [Fact]
    public async Task RunAsync_StepOutlivesShutdownGrace_KilledAndReportedRetryable()
    {
        var (_, running) = Start(Options(shutdownGrace: TimeSpan.FromMilliseconds(300)));
        var connection = await ConnectAsync();
        await connection.AssignAsync(18, Shell("long", "sleep 1000 & echo \"child $!\"; wait"));
        var log = await connection.WaitForAsync(m => m.StepLog?.FencingToken == 18);
        var grandchild = ProcessProbe.ParseChildPid(log.StepLog.Lines[0]);

        await _stop.CancelAsync();
        var failed = await connection.FailedAsync(18);
        await running.WithTimeout();

        Assert.False(failed.Permanent);
        Assert.False(failed.Cancelled);
        Assert.Contains("stopped before the step finished", failed.Error, StringComparison.Ordinal);
        Assert.False(ProcessProbe.IsRunning(grandchild), $"grandchild {grandchild} still runs");
    }

    [Fact]
    public async Task Assignment_BeyondFreeSlots_RefusedRetryable()
    {
        var gate = new Gate();
        _dotnet.Register("wait", gate.HandleAsync);
        Start(Options(slots: 1));
        var connection = await ConnectAsync();
        await connection.AssignAsync(19, Dotnet("a", "wait"));
        await gate.Started.Task.WithTimeout();

        await connection.AssignAsync(20, Shell("b", "true"));
        var refused = await connection.FailedAsync(20);
        gate.Release.SetResult("a done");
        await connection.CompletedAsync(19);

        Assert.Contains("free slots", refused.Error, StringComparison.Ordinal);
        Assert.False(refused.Permanent);
    }

    [Fact]
    public async Task Assignment_UnknownFramework_RefusedNamingWhatTheAgentRuns()
    {
        Start();
        var connection = await ConnectAsync();

        await connection.AssignAsync(21, new StepSpec { Id = "x", Framework = "wasm" });
        var refused = await connection.FailedAsync(21);

        Assert.Contains("'wasm'", refused.Error, StringComparison.Ordinal);
        Assert.Contains("shell", refused.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Assignment_ManyLogLines_AllDeliveredInOrder()
    {
        Start();
        var connection = await ConnectAsync();

        await connection.AssignAsync(22, Shell("chatty", "i=0; while [ $i -lt 2000 ]; do echo \"line $i\"; i=$((i+1)); done"));
        await connection.CompletedAsync(22);

        var lines = connection.Received.Where(m => m.StepLog?.FencingToken == 22).SelectMany(m => m.StepLog.Lines).ToList();
        Assert.Equal(Enumerable.Range(0, 2000).Select(i => $"line {i}"), lines);
    }

    [Fact]
    public async Task Assignment_StepPastItsTimeout_ReportedTimedOut()
    {
        Start();
        var connection = await ConnectAsync();
        var spec = Shell("slow", "sleep 1000");
        spec.Timeout = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromMilliseconds(300));

        await connection.AssignAsync(23, spec);
        var failed = await connection.FailedAsync(23);

        Assert.True(failed.TimedOut);
        Assert.False(failed.Cancelled);
        Assert.Contains("timeout", failed.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ResultRejected_ForRunningAttempt_StopsItWithoutFurtherReports()
    {
        var gate = new Gate();
        _dotnet.Register("wait", gate.HandleAsync);
        var (_, running) = Start();
        var connection = await ConnectAsync();
        await connection.AssignAsync(24, Dotnet("slow", "wait"));
        await gate.Started.Task.WithTimeout();

        await connection.SendAsync(new ConnectResponse { ResultRejected = new ResultRejected { FencingToken = 24, Reason = "stale fencing token" } });
        await gate.Cancelled.Task.WithTimeout();
        await connection.SendAsync(new ConnectResponse { Drain = new Drain() });
        await running.WithTimeout();

        Assert.DoesNotContain(connection.Received, m => m.StepCompleted?.FencingToken == 24 || m.StepFailed?.FencingToken == 24);
    }

    [Fact]
    public async Task Assignment_SameTokenTwice_RunsOnce()
    {
        var runs = 0;
        var gate = new Gate();
        _dotnet.Register("count", ctx =>
        {
            Interlocked.Increment(ref runs);
            return gate.HandleAsync(ctx);
        });
        Start();
        var connection = await ConnectAsync();

        await connection.AssignAsync(25, Dotnet("once", "count"));
        await connection.AssignAsync(25, Dotnet("once", "count"));
        await gate.Started.Task.WithTimeout();
        await connection.AssignAsync(26, Shell("marker", "true"));
        await connection.CompletedAsync(26);
        gate.Release.SetResult("x");
        await connection.CompletedAsync(25);

        Assert.Equal(1, runs);
        Assert.Single(connection.Received, m => m.StepStarted?.FencingToken == 25);
    }
}
