using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

public sealed class EmbeddedRunStoreTests : RunStoreContractTests
{
    protected override Task<IRunStore> CreateStoreAsync(RunStoreOptions options, TimeProvider time) =>
        Task.FromResult<IRunStore>(new EmbeddedRunStore(options, time));

    [Fact]
    public async Task Claim_FencingToken_NotBelowTheStoreClockInMicroseconds()
    {
        await Store.SubmitRunAsync(Run(Shell("a"), Shell("b")), null);
        var session = await Connect("agent-1", slots: 2);
        var micros = (Time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks / 10;

        var claimed = await Store.ClaimAsync(new ClaimRequest("agent-1", 2) { SessionId = session.SessionId });

        Assert.Equal([micros, micros + 1], claimed.Select(a => a.FencingToken).Order());
    }
}
