using ControlPlane.V1;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

// The run's trace context: kept at submit, shown as Run.trace_id, handed to every attempt in its assignment.
public abstract partial class RunStoreContractTests
{
    private const string TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    private const string TraceId = "4bf92f3577b34da6a3ce929d0e0e4736";

    [Fact]
    public async Task SubmitRun_WithTraceParent_KeepsItForGetListAndEveryAttempt()
    {
        var traced = await Store.SubmitRunAsync(Run(Shell("a"), Shell("b", "a")), "traced", TraceParent);

        Assert.Equal(TraceId, traced.Run.TraceId);
        Assert.Equal(TraceId, (await Store.GetRunAsync(traced.Run.Id))!.TraceId);
        Assert.Equal(TraceId, Assert.Single((await Store.ListRunsAsync(new RunQuery())).Runs).TraceId);

        await Connect("agent-1", 1);
        var first = Assert.Single(await Claim("agent-1", 1));
        Assert.Equal(TraceParent, first.Traceparent);
        Assert.Equal(ReportOutcome.Accepted, await Complete(first));
        var second = Assert.Single(await Claim("agent-1", 1));
        Assert.Equal("b", second.StepId);
        Assert.Equal(TraceParent, second.Traceparent);

        // A repeated idempotency key returns the run as first submitted, with its first context.
        var again = await Store.SubmitRunAsync(Run(Shell("a"), Shell("b", "a")), "traced", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        Assert.False(again.Created);
        Assert.Equal(TraceId, again.Run.TraceId);
    }

    [Fact]
    public async Task SubmitRun_WithoutTraceParent_HasNoTraceIdAndAssignmentsCarryNone()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;

        Assert.Equal(string.Empty, run.TraceId);
        Assert.Equal(string.Empty, (await Store.GetRunAsync(run.Id))!.TraceId);
        await Connect("agent-1", 1);
        Assert.Equal(string.Empty, Assert.Single(await Claim("agent-1", 1)).Traceparent);
    }

    [Theory]
    [InlineData("not-a-traceparent")]
    [InlineData("00-00000000000000000000000000000000-00f067aa0ba902b7-01")]
    [InlineData("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
    [InlineData("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")]
    public async Task SubmitRun_MalformedTraceParent_ThrowsAndStoresNothing(string traceParent)
    {
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => Store.SubmitRunAsync(Run(Shell("a")), "k", traceParent));

        Assert.Equal("traceParent", ex.ParamName);
        Assert.Empty((await Store.ListRunsAsync(new RunQuery())).Runs);
    }
}
