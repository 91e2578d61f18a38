using System.Text;
using ControlPlane.V1;

namespace ControlPlane.Agent.Tests;

/// <summary>What a shell step hands the agent through files and pipes: only regular files are read, and nothing is read without a bound.</summary>
public sealed class ShellFrameworkFileTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly ShellFramework _shell = new(killGracePeriod: TimeSpan.FromSeconds(1));
    private readonly RecordingReporter _reporter = new();

    public void Dispose() => _dir.Dispose();

    private Task<StepResult> Run(StepExecution execution, CancellationToken cancellationToken = default) =>
        _shell.RunAsync(execution, _reporter, cancellationToken).WithTimeout();

    [Fact]
    public async Task RunAsync_OutputFileIsFifo_FailsNamingTheVariableWithoutHanging()
    {
        var result = await Run(Steps.Shell(_dir.Path, "mkfifo \"$CP_OUTPUT_FILE\""));

        Assert.False(result.Succeeded);
        Assert.True(result.Permanent);
        Assert.Contains("CP_OUTPUT_FILE", result.Error, StringComparison.Ordinal);
        Assert.Contains("FIFO", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_OutputFileLinksToDevice_FailsAsNotARegularFile()
    {
        var result = await Run(Steps.Shell(_dir.Path, "ln -s /dev/null \"$CP_OUTPUT_FILE\""));

        Assert.False(result.Succeeded);
        Assert.True(result.Permanent);
        Assert.Contains("CP_OUTPUT_FILE", result.Error, StringComparison.Ordinal);
        Assert.Contains("character device", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_OutputFileIsDirectory_FailsAsNotARegularFile()
    {
        var result = await Run(Steps.Shell(_dir.Path, "mkdir \"$CP_OUTPUT_FILE\""));

        Assert.False(result.Succeeded);
        Assert.Contains("directory", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_OutputFileLinksToRegularFile_ReadsTheTarget()
    {
        var result = await Run(Steps.Shell(_dir.Path, "printf 'linked' > real.txt; ln -s \"$PWD/real.txt\" \"$CP_OUTPUT_FILE\""));

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal("linked", Encoding.UTF8.GetString(result.Output.Span));
    }

    [Fact]
    public async Task RunAsync_OutputOfExactlyOneMebibyte_Succeeds()
    {
        var result = await Run(Steps.Shell(_dir.Path, "head -c 1048576 /dev/zero > \"$CP_OUTPUT_FILE\""));

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal(ShellFramework.MaxInlineBytes, result.Output.Length);
    }

    [Fact]
    public async Task RunAsync_CheckpointOfFifo_IgnoredWithWarningAndStepFinishes()
    {
        var result = await Run(Steps.Shell(_dir.Path, "mkfifo state.fifo; echo '::cp checkpoint state.fifo'; echo after"));

        Assert.True(result.Succeeded, result.Error);
        Assert.Empty(_reporter.Checkpoints);
        Assert.Contains(_reporter.Logs, l => l.Stream == LogStream.Stderr && l.Line.Contains("state.fifo", StringComparison.Ordinal) && l.Line.Contains("FIFO", StringComparison.Ordinal));
        Assert.Contains((LogStream.Stdout, "after"), _reporter.Logs);
    }

    [Fact]
    public async Task RunAsync_CheckpointLinksToDevice_IgnoredWithWarning()
    {
        var result = await Run(Steps.Shell(_dir.Path, "ln -s /dev/null state.bin; echo '::cp checkpoint state.bin'"));

        Assert.True(result.Succeeded, result.Error);
        Assert.Empty(_reporter.Checkpoints);
        Assert.Contains(_reporter.Logs, l => l.Stream == LogStream.Stderr && l.Line.Contains("character device", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunAsync_CheckpointOverOneMebibyte_IgnoredWithWarning()
    {
        var result = await Run(Steps.Shell(_dir.Path, "head -c 1048577 /dev/zero > state.bin; echo '::cp checkpoint state.bin'"));

        Assert.True(result.Succeeded, result.Error);
        Assert.Empty(_reporter.Checkpoints);
        Assert.Contains(_reporter.Logs, l => l.Stream == LogStream.Stderr && l.Line.Contains("1048576", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunAsync_LineWithoutNewline_CutAtTheLimitAsItArrives()
    {
        // 64 KiB with no newline from a step that keeps running: the cut line must arrive while the line is still open.
        using var cts = new CancellationTokenSource();
        var running = _shell.RunAsync(Steps.Shell(_dir.Path, "head -c 65536 /dev/zero | tr '\\0' a; sleep 1000"), _reporter, cts.Token);

        var cut = await _reporter.WaitForLogAsync("aaaa").WithTimeout();
        await cts.CancelAsync();
        await running.WithTimeout();

        Assert.StartsWith(new string('a', ShellFramework.MaxLogLineBytes), cut, StringComparison.Ordinal);
        Assert.DoesNotContain("aaaaa", cut[ShellFramework.MaxLogLineBytes..], StringComparison.Ordinal);
        Assert.Contains("cut", cut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_LongLine_RestDroppedUntilTheNextLine()
    {
        var result = await Run(Steps.Shell(_dir.Path, "head -c 65536 /dev/zero | tr '\\0' a; echo; echo next"));

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal(2, _reporter.Logs.Count);
        Assert.Contains("cut", _reporter.Logs[0].Line, StringComparison.Ordinal);
        Assert.Equal("next", _reporter.Logs[1].Line);
    }

    [Fact]
    public async Task RunAsync_LineOfExactlyTheLimit_KeptWhole()
    {
        var result = await Run(Steps.Shell(_dir.Path, $"head -c {ShellFramework.MaxLogLineBytes} /dev/zero | tr '\\0' b; printf '\\r\\nc\\rd\\n'"));

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal(
            [new string('b', ShellFramework.MaxLogLineBytes), "c", "d"],
            _reporter.Logs.Select(l => l.Line).ToArray());
    }
}
