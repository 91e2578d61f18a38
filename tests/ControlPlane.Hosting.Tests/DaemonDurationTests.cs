namespace ControlPlane.Hosting.Tests;

public sealed class DaemonDurationTests
{
    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("30s", 30_000)]
    [InlineData("5m", 300_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("2m30s500ms", 150_500)]
    [InlineData("1.5s", 1_500)]
    [InlineData("00:00:30", 30_000)]
    [InlineData(" 10s ", 10_000)]
    public void TryParse_EveryWrittenForm_GivesTheDuration(string text, long milliseconds)
    {
        Assert.True(DaemonDuration.TryParse(text, out var value));

        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
    }

    [Theory]
    [InlineData("30")]
    [InlineData("soon")]
    [InlineData("30m1h")]
    [InlineData("1h1h")]
    [InlineData("5 m")]
    [InlineData("5d")]
    [InlineData("")]
    public void TryParse_NotADuration_Refused(string text)
    {
        Assert.False(DaemonDuration.TryParse(text, out _));
    }

    [Theory]
    [InlineData(500, "500ms")]
    [InlineData(30_000, "30s")]
    [InlineData(5_400_000, "1h30m")]
    [InlineData(0, "0s")]
    public void Format_ShortForm_ParsesBackToTheSameDuration(long milliseconds, string expected)
    {
        var text = DaemonDuration.Format(TimeSpan.FromMilliseconds(milliseconds));

        Assert.Equal(expected, text);
        Assert.True(DaemonDuration.TryParse(text, out var back));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), back);
    }
}
