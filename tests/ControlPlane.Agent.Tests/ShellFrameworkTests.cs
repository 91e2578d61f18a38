using System.Text;
using System.Text.Json;
using ControlPlane.Tests.Support;
using ControlPlane.V1;

namespace ControlPlane.Agent.Tests;

public sealed class ShellFrameworkTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly ShellFramework _shell = new(killGracePeriod: TimeSpan.FromSeconds(1));
    private readonly RecordingReporter _reporter = new();

    public void Dispose() => _dir.Dispose();

    private Task<StepResult> Run(StepExecution execution, CancellationToken cancellationToken = default) =>
        _shell.RunAsync(execution, _reporter, cancellationToken).WithTimeout();

    [Fact]
    public async Task RunAsync_Environment_ExposesIdsAndOwnEmptyWorkDirectory()
    {
        var execution = Steps.Shell(_dir.Path, """
            {
              echo "run=$CP_RUN_ID"
              echo "step=$CP_STEP_ID"
              echo "attempt=$CP_ATTEMPT"
              echo "pwd=$(pwd)"
              echo "work=$CP_WORK_DIR"
              echo "entries=$(ls -A "$CP_WORK_DIR" | wc -l)"
            } > "$CP_OUTPUT_FILE"
            """, attempt: 3);

        var result = await Run(execution);

        Assert.True(result.Succeeded, result.Error);
        var lines = Encoding.UTF8.GetString(result.Output.Span).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        Assert.Equal("run-1", lines["run"]);
        Assert.Equal("step-a", lines["step"]);
        Assert.Equal("3", lines["attempt"]);
        Assert.Equal(Path.Combine(execution.Directory, "work"), lines["work"]);
        Assert.Equal(lines["work"], lines["pwd"]);
        Assert.Equal("0", lines["entries"].Trim());
    }

    [Fact]
    public async Task RunAsync_Inputs_OneFilePerUpstreamStepNamedByItsId()
    {
        var execution = Steps.Shell(_dir.Path, """
            for f in $(ls "$CP_INPUTS_DIR" | sort); do printf '%s:%s;' "$f" "$(cat "$CP_INPUTS_DIR/$f")"; done > "$CP_OUTPUT_FILE"
            """, inputs: new() { ["list"] = "a.png b.png", ["config"] = "width=640" });

        var result = await Run(execution);

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal("config:width=640;list:a.png b.png;", Encoding.UTF8.GetString(result.Output.Span));
    }

    [Fact]
    public async Task RunAsync_NoOutputFileWritten_SucceedsWithEmptyOutput()
    {
        var result = await Run(Steps.Shell(_dir.Path, "true"));

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal(0, result.Output.Length);
    }

    [Fact]
    public async Task RunAsync_Params_GivenAsJson()
    {
        var execution = Steps.Shell(_dir.Path, "printf '%s' \"$CP_PARAMS\" > \"$CP_OUTPUT_FILE\"", paramsJson: """{"width": 640, "name": "x"}""");

        var result = await Run(execution);

        using var json = JsonDocument.Parse(result.Output);
        Assert.Equal(640, json.RootElement.GetProperty("width").GetDouble());
        Assert.Equal("x", json.RootElement.GetProperty("name").GetString());
    }

    [Fact]
    public async Task RunAsync_NoEarlierCheckpoint_CheckpointVariableAbsent()
    {
        var result = await Run(Steps.Shell(_dir.Path, "if [ -z \"${CP_CHECKPOINT_FILE+set}\" ]; then echo absent; else echo \"present $CP_CHECKPOINT_FILE\"; fi > \"$CP_OUTPUT_FILE\""));

        Assert.Equal("absent\n", Encoding.UTF8.GetString(result.Output.Span));
    }

    [Fact]
    public async Task RunAsync_EarlierCheckpoint_FileHoldsItsBytes()
    {
        var execution = Steps.Shell(_dir.Path, "cat \"$CP_CHECKPOINT_FILE\" > \"$CP_OUTPUT_FILE\"", checkpoint: Encoding.UTF8.GetBytes("processed=41"));

        var result = await Run(execution);

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal("processed=41", Encoding.UTF8.GetString(result.Output.Span));
    }

    [Fact]
    public async Task RunAsync_ProgressCommands_ReportedNotLogged()
    {
        var result = await Run(Steps.Shell(_dir.Path, "echo '::cp progress 25 resizing images'; echo '::cp progress 100'"));

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal([(25d, "resizing images"), (100d, "")], _reporter.Progress.Select(p => (p.Percent, p.Message)).ToArray());
        Assert.Empty(_reporter.Logs);
    }

    [Fact]
    public async Task RunAsync_CheckpointCommand_ReportsTheFileBytes()
    {
        var result = await Run(Steps.Shell(_dir.Path, "printf 'offset=7' > state.bin; echo '::cp checkpoint state.bin'"));

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal("offset=7", Encoding.UTF8.GetString(Assert.Single(_reporter.Checkpoints)));
    }

    [Fact]
    public async Task RunAsync_CheckpointOfMissingFile_ExplainedOnStderr()
    {
        await Run(Steps.Shell(_dir.Path, "echo '::cp checkpoint nope.bin'"));

        Assert.Empty(_reporter.Checkpoints);
        var (stream, line) = Assert.Single(_reporter.Logs);
        Assert.Equal(LogStream.Stderr, stream);
        Assert.Contains("nope.bin", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_UsageCommands_AddUpInTheResult()
    {
        var result = await Run(Steps.Shell(_dir.Path, "echo '::cp usage tokens=100 cpu_seconds=1.5'; echo '::cp usage tokens=50'"));

        Assert.Equal(150, result.Usage["tokens"]);
        Assert.Equal(1.5, result.Usage["cpu_seconds"]);
    }

    [Fact]
    public async Task RunAsync_FailedStepUsage_StillReported()
    {
        var result = await Run(Steps.Shell(_dir.Path, "echo '::cp usage tokens=7'; exit 1"));

        Assert.False(result.Succeeded);
        Assert.Equal(7, result.Usage["tokens"]);
    }

    [Fact]
    public async Task RunAsync_OtherLines_AreLogLinesOfTheirStream()
    {
        await Run(Steps.Shell(_dir.Path, "echo hello; echo oops >&2; echo '::cpx not a command'"));

        Assert.Contains((LogStream.Stdout, "hello"), _reporter.Logs);
        Assert.Contains((LogStream.Stderr, "oops"), _reporter.Logs);
        Assert.Contains((LogStream.Stdout, "::cpx not a command"), _reporter.Logs);
        Assert.Equal(3, _reporter.Logs.Count);
    }

    [Fact]
    public async Task RunAsync_MalformedCommand_LoggedWithHowToFix()
    {
        await Run(Steps.Shell(_dir.Path, "echo '::cp progress lots'"));

        Assert.Empty(_reporter.Progress);
        Assert.Contains((LogStream.Stdout, "::cp progress lots"), _reporter.Logs);
        Assert.Contains(_reporter.Logs, l => l.Stream == LogStream.Stderr && l.Line.Contains("number 0-100", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunAsync_NonZeroExit_FailsRetryableWithExitCodeAndStderrTail()
    {
        var result = await Run(Steps.Shell(_dir.Path, "echo 'disk full' >&2; exit 3"));

        Assert.False(result.Succeeded);
        Assert.False(result.Permanent);
        Assert.False(result.TimedOut);
        Assert.False(result.Cancelled);
        Assert.Contains("code 3", result.Error, StringComparison.Ordinal);
        Assert.Contains("disk full", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_EmptyCommand_FailsPermanentlyNamingTheField()
    {
        var result = await Run(Steps.Shell(_dir.Path, " "));

        Assert.True(result.Permanent);
        Assert.Contains("'run'", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_OutputOverOneMebibyte_FailsPermanently()
    {
        var result = await Run(Steps.Shell(_dir.Path, "head -c 1048577 /dev/zero > \"$CP_OUTPUT_FILE\""));

        Assert.False(result.Succeeded);
        Assert.True(result.Permanent);
        Assert.Contains("1048577", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_Timeout_KillsWholeTreeAndReportsTimedOut()
    {
        var execution = Steps.Shell(_dir.Path, "sleep 1000 & echo \"child $!\"; wait", timeout: TimeSpan.FromSeconds(1));

        var result = await Run(execution);

        Assert.False(result.Succeeded);
        Assert.True(result.TimedOut);
        Assert.False(result.Cancelled);
        var grandchild = ProcessProbe.ParseChildPid(await _reporter.WaitForLogAsync("child "));
        Assert.False(ProcessProbe.IsRunning(grandchild), $"grandchild {grandchild} still runs");
    }

    [Fact]
    public async Task RunAsync_Cancel_KillsWholeTreeAndReportsCancelled()
    {
        using var cts = new CancellationTokenSource();
        var running = _shell.RunAsync(Steps.Shell(_dir.Path, "sleep 1000 & echo \"child $!\"; wait"), _reporter, cts.Token);
        var grandchild = ProcessProbe.ParseChildPid(await _reporter.WaitForLogAsync("child ").WithTimeout());
        Assert.True(ProcessProbe.IsRunning(grandchild));

        await cts.CancelAsync();
        var result = await running.WithTimeout();

        Assert.True(result.Cancelled);
        Assert.False(result.TimedOut);
        Assert.False(ProcessProbe.IsRunning(grandchild), $"grandchild {grandchild} still runs");
    }

    [Fact]
    public async Task RunAsync_GrandchildIgnoringSigterm_KilledAfterGracePeriod()
    {
        using var cts = new CancellationTokenSource();
        var running = _shell.RunAsync(Steps.Shell(_dir.Path, "sh -c 'trap \"\" TERM; echo \"child $$\"; while :; do sleep 1; done' & wait"), _reporter, cts.Token);
        var grandchild = ProcessProbe.ParseChildPid(await _reporter.WaitForLogAsync("child ").WithTimeout());

        await cts.CancelAsync();
        var result = await running.WithTimeout();

        Assert.True(result.Cancelled);
        Assert.False(ProcessProbe.IsRunning(grandchild), $"grandchild {grandchild} ignoring SIGTERM still runs");
    }

    [Fact]
    public async Task RunAsync_BackgroundJobLeftAfterSuccess_KilledAndDoesNotHoldTheStep()
    {
        var result = await Run(Steps.Shell(_dir.Path, "sleep 1000 & echo \"child $!\"; echo done > \"$CP_OUTPUT_FILE\""));

        Assert.True(result.Succeeded, result.Error);
        var grandchild = ProcessProbe.ParseChildPid(await _reporter.WaitForLogAsync("child "));
        Assert.False(ProcessProbe.IsRunning(grandchild), $"background job {grandchild} still runs");
    }

    [Fact]
    public async Task RunAsync_Step_RunsInItsOwnProcessGroup()
    {
        var result = await Run(Steps.Shell(_dir.Path, "echo \"$$ $(cut -d' ' -f5 /proc/$$/stat)\" > \"$CP_OUTPUT_FILE\""));

        var parts = Encoding.UTF8.GetString(result.Output.Span).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(parts[0], parts[1]);
    }

    [Fact]
    public async Task RunAsync_WatchdogGoneBeforeTheStepEnds_ResultIsTheStepsOwn()
    {
        // Every other process of the step's group (the watchdog and its reader) is killed: the agent's next keep-alive
        // line meets a broken pipe, and closing the pipe at the end fails again. Neither is the step's failure.
        var command = "for p in $(pgrep -g $$); do [ \"$p\" != $$ ] && kill -9 \"$p\" 2>/dev/null; done; sleep 1; printf ok > \"$CP_OUTPUT_FILE\"";
        var execution = Steps.Shell(_dir.Path, command) with { LeaseDuration = TimeSpan.FromSeconds(2) };

        var result = await Run(execution);

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal("ok", System.Text.Encoding.UTF8.GetString(result.Output.Span));
    }
}
