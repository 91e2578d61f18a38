using System.Diagnostics;
using ControlPlane.Scheduler.Internal;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

/// <summary>The trace context a run keeps at submit, whether or not anything on this replica records traces.</summary>
public sealed class RunTraceTests
{
    [Fact]
    public void ForSubmit_LocalUnsampledRequestActivity_KeptAsRecorded()
    {
        // What ASP.NET Core makes for a request when nothing listens: a W3C activity without the recorded flag.
        using var request = new Activity("request").SetIdFormat(ActivityIdFormat.W3C).Start();
        Assert.False(request.Recorded);

        var kept = RunTrace.ForSubmit();

        Assert.Equal($"00-{request.TraceId}-{request.SpanId}-01", kept);
    }

    [Theory]
    [InlineData("00", "00")]
    [InlineData("01", "01")]
    public void ForSubmit_CallerSentATraceparent_ItsDecisionTravelsOn(string callerFlags, string expected)
    {
        var caller = $"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-{callerFlags}";
        using var request = new Activity("request").SetIdFormat(ActivityIdFormat.W3C).SetParentId(caller).Start();

        var kept = RunTrace.ForSubmit();

        Assert.StartsWith("00-0af7651916cd43dd8448eb211c80319c-", kept, StringComparison.Ordinal);
        Assert.EndsWith("-" + expected, kept, StringComparison.Ordinal);
        Assert.Equal(request.SpanId.ToHexString(), kept.Substring(36, 16));
    }
}
