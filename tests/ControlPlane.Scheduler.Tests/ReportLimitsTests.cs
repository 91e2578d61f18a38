using ControlPlane.Scheduler.Internal;
using ControlPlane.V1;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

/// <summary>The limits every report is held to where it enters the scheduler and again in each store.</summary>
public sealed class ReportLimitsTests
{
    [Fact]
    public void Normalize_ReportWithinLimits_ReturnsTheSameInstance()
    {
        var reports = new[]
        {
            new ConnectRequest { StepProgress = new StepProgress { FencingToken = 1, Percent = 42, Message = "half 😀" } },
            new ConnectRequest { StepLog = new StepLog { FencingToken = 1, Lines = { "a", "b" } } },
            new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = 1, Usage = { ["cpu"] = 1.5 } } },
            new ConnectRequest { StepFailed = new StepFailed { FencingToken = 1, Error = "boom", Usage = { ["cpu"] = 0 } } },
        };

        Assert.All(reports, r => Assert.Same(r, ReportLimits.Normalize(r)));
    }

    [Theory]
    [InlineData(double.NaN, 0)]
    [InlineData(double.PositiveInfinity, 100)]
    [InlineData(double.NegativeInfinity, 0)]
    [InlineData(-3, 0)]
    [InlineData(250, 100)]
    public void Normalize_ProgressOutOfRange_Clamped(double percent, double expected)
    {
        var r = ReportLimits.Normalize(new ConnectRequest { StepProgress = new StepProgress { FencingToken = 7, Percent = percent } });

        Assert.Equal(expected, r.StepProgress.Percent);
        Assert.Equal(7, r.StepProgress.FencingToken);
    }

    [Fact]
    public void Normalize_LoneSurrogatesAndLongText_ReplacedAndCutWithMarker()
    {
        var r = ReportLimits.Normalize(new ConnectRequest { StepFailed = new StepFailed { Error = "a\ud800b" + new string('x', 10_000), Permanent = true } });

        Assert.StartsWith("a\uFFFDb", r.StepFailed.Error, StringComparison.Ordinal);
        Assert.EndsWith($"[{10_003 - ReportLimits.MaxTextChars} characters truncated]", r.StepFailed.Error, StringComparison.Ordinal);
        Assert.True(r.StepFailed.Permanent);
    }

    [Fact]
    public void Normalize_CompletionWithUnusableUsage_PermanentFailureKeepingTheUsableAmounts()
    {
        var r = ReportLimits.Normalize(new ConnectRequest { StepCompleted = new StepCompleted { FencingToken = 3, Usage = { ["cpu"] = 2, ["gpu"] = double.PositiveInfinity } } });

        Assert.Equal(ConnectRequest.MessageOneofCase.StepFailed, r.MessageCase);
        Assert.True(r.StepFailed.Permanent);
        Assert.Equal(3, r.StepFailed.FencingToken);
        Assert.Equal("step_completed.usage[gpu] is Infinity; report each amount as a finite number between 0 and 1e15", r.StepFailed.Error);
        Assert.Equal(new Dictionary<string, double> { ["cpu"] = 2 }, r.StepFailed.Usage);
    }

    [Fact]
    public void Normalize_UnknownLogStream_ReadsAsUnspecified()
    {
        var r = ReportLimits.Normalize(new ConnectRequest { StepLog = new StepLog { Stream = (LogStream)(-5), Lines = { "x" } } });

        Assert.Equal(LogStream.Unspecified, r.StepLog.Stream);
        Assert.Equal(["x"], r.StepLog.Lines);
    }

    [Fact]
    public void Normalize_TooManyLogLines_KeepsTheFirstAndSaysHowManyWereDropped()
    {
        var r = ReportLimits.Normalize(new ConnectRequest { StepLog = new StepLog { Lines = { Enumerable.Range(0, ReportLimits.MaxLogLines + 5).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)) } } });

        Assert.Equal(ReportLimits.MaxLogLines + 1, r.StepLog.Lines.Count);
        Assert.Equal("[5 lines dropped: a report carries at most 1000 log lines]", r.StepLog.Lines[^1]);
    }
}
