using System.Text;
using ControlPlane.V1;

namespace ControlPlane.Agent.Tests;

public sealed class DotnetFrameworkTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly DotnetFramework _dotnet = new(abandonAfter: TimeSpan.FromSeconds(5));
    private readonly RecordingReporter _reporter = new();

    public void Dispose() => _dir.Dispose();

    private sealed record ResizeParams(int Width, string Format);

    private sealed class UpperCaseHandler : IStepHandler
    {
        public Task<StepHandlerResult> HandleAsync(IStepContext context) =>
            Task.FromResult(StepHandlerResult.FromString(context.Inputs["list"].GetString().ToUpperInvariant()));
    }

    [Fact]
    public async Task RunAsync_RegisteredHandler_SeesIdsInputsParamsAndReturnsOutput()
    {
        IStepContext? seen = null;
        _dotnet.Register("resize", ctx =>
        {
            seen = ctx;
            var p = ctx.GetParams<ResizeParams>();
            return Task.FromResult(StepHandlerResult.FromString($"{ctx.Inputs["list"].GetString()}@{p.Width}.{p.Format}"));
        });

        var result = await _dotnet.RunAsync(
            Steps.Dotnet(_dir.Path, "resize", inputs: new() { ["list"] = "a.png" }, paramsJson: """{"width": 640, "format": "webp"}"""),
            _reporter,
            CancellationToken.None).WithTimeout();

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal("a.png@640.webp", Encoding.UTF8.GetString(result.Output.Span));
        Assert.Equal(("run-1", "step-a", 1), (seen!.RunId, seen.StepId, seen.Attempt));
        Assert.Null(seen.LastCheckpoint);
    }

    [Fact]
    public async Task RunAsync_HandlerType_NewInstanceRuns()
    {
        _dotnet.Register<UpperCaseHandler>("upper");

        var result = await _dotnet.RunAsync(Steps.Dotnet(_dir.Path, "upper", inputs: new() { ["list"] = "abc" }), _reporter, CancellationToken.None).WithTimeout();

        Assert.Equal("ABC", Encoding.UTF8.GetString(result.Output.Span));
    }

    [Fact]
    public async Task RunAsync_EarlierCheckpoint_GivenAsLastCheckpoint()
    {
        string? restored = null;
        _dotnet.Register("resume", ctx =>
        {
            restored = Encoding.UTF8.GetString(ctx.LastCheckpoint!.Value.Span);
            return Task.FromResult(StepHandlerResult.Empty);
        });

        await _dotnet.RunAsync(Steps.Dotnet(_dir.Path, "resume", checkpoint: Encoding.UTF8.GetBytes("page=9")), _reporter, CancellationToken.None).WithTimeout();

        Assert.Equal("page=9", restored);
    }

    [Fact]
    public async Task RunAsync_HandlerReports_ProgressCheckpointLogAndUsageForwarded()
    {
        _dotnet.Register("busy", async ctx =>
        {
            ctx.ReportProgress(50, "half");
            await ctx.CheckpointAsync(Encoding.UTF8.GetBytes("cp"));
            ctx.Log("working");
            ctx.ReportUsage("tokens", 10);
            ctx.ReportUsage("tokens", 5);
            return StepHandlerResult.Empty;
        });

        var result = await _dotnet.RunAsync(Steps.Dotnet(_dir.Path, "busy"), _reporter, CancellationToken.None).WithTimeout();

        Assert.True(result.Succeeded);
        Assert.Equal((50d, "half"), Assert.Single(_reporter.Progress));
        Assert.Equal("cp", Encoding.UTF8.GetString(Assert.Single(_reporter.Checkpoints)));
        Assert.Equal((LogStream.Stdout, "working"), Assert.Single(_reporter.Logs));
        Assert.Equal(15, result.Usage["tokens"]);
    }

    [Fact]
    public async Task RunAsync_UnknownHandler_FailsPermanentlyListingRegisteredOnes()
    {
        _dotnet.Register("known", _ => Task.FromResult(StepHandlerResult.Empty));

        var result = await _dotnet.RunAsync(Steps.Dotnet(_dir.Path, "missing"), _reporter, CancellationToken.None).WithTimeout();

        Assert.True(result.Permanent);
        Assert.Contains("'missing'", result.Error, StringComparison.Ordinal);
        Assert.Contains("known", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_HandlerThrows_FailsRetryableWithTheMessage()
    {
        _dotnet.Register("boom", _ => throw new InvalidOperationException("bucket missing"));

        var result = await _dotnet.RunAsync(Steps.Dotnet(_dir.Path, "boom"), _reporter, CancellationToken.None).WithTimeout();

        Assert.False(result.Succeeded);
        Assert.False(result.Permanent);
        Assert.Contains("bucket missing", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_HandlerReturnsPermanentFailure_Propagated()
    {
        _dotnet.Register("bad-input", _ => Task.FromResult(StepHandlerResult.Failure("image is corrupt", permanent: true)));

        var result = await _dotnet.RunAsync(Steps.Dotnet(_dir.Path, "bad-input"), _reporter, CancellationToken.None).WithTimeout();

        Assert.True(result.Permanent);
        Assert.Equal("image is corrupt", result.Error);
    }

    [Fact]
    public async Task RunAsync_Timeout_CancelsTheHandlerAndReportsTimedOut()
    {
        var tokenFired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _dotnet.Register("slow", async ctx =>
        {
            ctx.CancellationToken.Register(() => tokenFired.TrySetResult());
            await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
            return StepHandlerResult.Empty;
        });

        var result = await _dotnet.RunAsync(Steps.Dotnet(_dir.Path, "slow", timeout: TimeSpan.FromMilliseconds(200)), _reporter, CancellationToken.None).WithTimeout();

        Assert.True(result.TimedOut);
        Assert.False(result.Cancelled);
        Assert.True(tokenFired.Task.IsCompleted);
    }

    [Fact]
    public async Task RunAsync_Cancelled_ReportsCancelled()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _dotnet.Register("wait", async ctx =>
        {
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
            return StepHandlerResult.Empty;
        });
        using var cts = new CancellationTokenSource();

        var running = _dotnet.RunAsync(Steps.Dotnet(_dir.Path, "wait"), _reporter, cts.Token);
        await started.Task.WithTimeout();
        await cts.CancelAsync();
        var result = await running.WithTimeout();

        Assert.True(result.Cancelled);
        Assert.False(result.TimedOut);
    }

    [Fact]
    public async Task RunAsync_HandlerIgnoresCancellation_AttemptEndsAfterAbandonPeriod()
    {
        var dotnet = new DotnetFramework(abandonAfter: TimeSpan.FromMilliseconds(100));
        var release = new TaskCompletionSource<StepHandlerResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        dotnet.Register("stubborn", _ =>
        {
            started.TrySetResult();
            return release.Task;
        });
        using var cts = new CancellationTokenSource();

        var running = dotnet.RunAsync(Steps.Dotnet(_dir.Path, "stubborn"), _reporter, cts.Token);
        await started.Task.WithTimeout();
        await cts.CancelAsync();
        var result = await running.WithTimeout();
        release.SetResult(StepHandlerResult.Empty);

        Assert.True(result.Cancelled);
    }

    [Theory]
    [InlineData("")]
    [InlineData("Upper")]
    [InlineData("-dash")]
    [InlineData("has space")]
    public void Register_InvalidName_ThrowsSayingTheRule(string name)
    {
        var ex = Assert.Throws<ArgumentException>(() => _dotnet.Register(name, _ => Task.FromResult(StepHandlerResult.Empty)));

        Assert.Contains("[a-z0-9]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Register_SameNameTwice_Throws()
    {
        _dotnet.Register("dup", _ => Task.FromResult(StepHandlerResult.Empty));

        var ex = Assert.Throws<ArgumentException>(() => _dotnet.Register("dup", _ => Task.FromResult(StepHandlerResult.Empty)));

        Assert.Contains("already registered", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Handlers_AfterRegistering_ListsNamesSorted()
    {
        _dotnet.Register("resize", _ => Task.FromResult(StepHandlerResult.Empty));
        _dotnet.Register<UpperCaseHandler>("alpha");

        Assert.Equal(["alpha", "resize"], _dotnet.Handlers);
    }
}
