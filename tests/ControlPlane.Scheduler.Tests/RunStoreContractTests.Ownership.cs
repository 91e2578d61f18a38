using ControlPlane.V1;
using Google.Protobuf;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

/// <summary>
/// An agent session owns its attempts: a report or a lease renewal is applied only for the agent and session that hold
/// the attempt, whatever fencing token it carries; a reconnect of the same agent that re-announces the attempt takes it over.
/// </summary>
public abstract partial class RunStoreContractTests
{
    [Fact]
    public async Task Report_ResultWithTheRightTokenFromAnotherAgent_NotOwnerAndTheOwnersResultSucceeds()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        var owner = await Connect("agent-1", slots: 1);
        var intruder = await Connect("agent-2", slots: 1);
        var a = Assert.Single(await ClaimIn(owner, 1));

        var forged = await ReportAs(intruder, Completed(a, ByteString.CopyFromUtf8("forged")));
        var between = (await Store.GetRunAsync(run.Id))!;
        var real = await ReportAs(owner, Completed(a, ByteString.CopyFromUtf8("real")));

        Assert.Equal(ReportOutcome.NotOwner, forged);
        Assert.Equal(StepState.Assigned, StepOf(between, "a").State);
        Assert.Equal(ReportOutcome.Accepted, real);
        var after = (await Store.GetRunAsync(run.Id))!;
        Assert.Single(StepOf(after, "a").History, h => h.ToState == "STEP_STATE_SUCCEEDED");
        Assert.Equal("agent-1", StepOf(after, "a").AgentId);
        Assert.Equal("real", (await Store.GetStepOutputAsync(run.Id, "a"))!.Data.ToStringUtf8());
    }

    [Fact]
    public async Task Report_ResultFromASupersededSessionOfTheSameAgent_NotOwnerAndTheNewSessionsResultSucceeds()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        var old = await Connect("agent-1", slots: 1);
        var a = Assert.Single(await ClaimIn(old, 1));
        Assert.Equal(ReportOutcome.Accepted, await ReportAs(old, Started(a)));

        // The agent reconnects (possibly to another replica) and re-announces the attempt: the new session takes it over.
        var current = await Connect("agent-1", slots: 1, running: [Ref(a)]);
        var late = await ReportAs(old, Completed(a, ByteString.CopyFromUtf8("from the old stream")));
        var between = (await Store.GetRunAsync(run.Id))!;
        var real = await ReportAs(current, Completed(a, ByteString.CopyFromUtf8("real")));

        Assert.Empty(current.RevokedTokens);
        Assert.Equal(ReportOutcome.NotOwner, late);
        Assert.Equal(StepState.Running, StepOf(between, "a").State);
        Assert.Equal(ReportOutcome.Accepted, real);
        Assert.Equal(StepState.Succeeded, StepOf((await Store.GetRunAsync(run.Id))!, "a").State);
        Assert.Equal("real", (await Store.GetStepOutputAsync(run.Id, "a"))!.Data.ToStringUtf8());
    }

    [Fact]
    public async Task Report_EveryKindFromAnotherAgent_NotOwnerAndTheAttemptIsUntouched()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a").With(s => s.Estimate["cpu"] = 5)).With(s => s.Budget["cpu"] = 10), null)).Run;
        var owner = await Connect("agent-1", slots: 1);
        var intruder = await Connect("agent-2", slots: 1);
        var a = Assert.Single(await ClaimIn(owner, 1));
        var before = (await Store.GetRunAsync(run.Id))!;
        var eventsBefore = (await ReadAllEventsAsync(run.Id)).Count;

        var outcomes = await Store.ReportAsync(new[]
        {
            Started(a),
            new AttemptReport(Ref(a), new ConnectRequest { StepProgress = new StepProgress { FencingToken = a.FencingToken, Percent = 50, Message = "half" } }),
            new AttemptReport(Ref(a), new ConnectRequest { StepCheckpoint = new StepCheckpoint { FencingToken = a.FencingToken, Data = ByteString.CopyFromUtf8("ck") } }),
            new AttemptReport(Ref(a), new ConnectRequest { StepLog = new StepLog { FencingToken = a.FencingToken, Stream = LogStream.Stdout, Lines = { "forged" } } }),
            Failed(a, "forged failure", permanent: true),
            Declined(a, "forged decline"),
            Completed(a, ByteString.CopyFromUtf8("forged"), new() { ["cpu"] = 10 }),
        }.Select(r => r with { AgentId = intruder.AgentId, SessionId = intruder.SessionId }).ToList());

        Assert.All(outcomes, o => Assert.Equal(ReportOutcome.NotOwner, o));
        var after = (await Store.GetRunAsync(run.Id))!;
        Assert.Equal(before, after);
        Assert.Equal(eventsBefore, (await ReadAllEventsAsync(run.Id)).Count);
        Assert.Equal(1, (await Store.GetStatsAsync()).Slots.Single(s => s.Kind == "agent" && s.Name == "agent-1").Used);
    }

    [Fact]
    public async Task Report_ResultRepeatedAfterItWasApplied_AlreadyAppliedForTheOwnersNewSessionOnly()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        var old = await Connect("agent-1", slots: 1);
        var intruder = await Connect("agent-2", slots: 1);
        var a = Assert.Single(await ClaimIn(old, 1));
        Assert.Equal(ReportOutcome.Accepted, await ReportAs(old, Completed(a, ByteString.CopyFromUtf8("real"))));

        // The acknowledgement was lost: the agent reconnects and sends its result again on its new stream.
        var current = await Connect("agent-1", slots: 1);
        var repeated = await ReportAs(current, Completed(a, ByteString.CopyFromUtf8("real")));
        var forged = await ReportAs(intruder, Completed(a, ByteString.CopyFromUtf8("forged")));

        Assert.Equal(ReportOutcome.AlreadyApplied, repeated);
        Assert.Equal(ReportOutcome.NotOwner, forged);
        Assert.Equal("real", (await Store.GetStepOutputAsync(run.Id, "a"))!.Data.ToStringUtf8());
    }

    [Fact]
    public async Task ConnectAgent_AnotherAgentReannouncesTheAttempt_RevokedAndTheOwnerKeepsIt()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        var owner = await Connect("agent-1", slots: 1);
        var a = Assert.Single(await ClaimIn(owner, 1));

        var intruder = await Connect("agent-2", slots: 1, running: [Ref(a)]);
        var forged = await ReportAs(intruder, Completed(a, ByteString.CopyFromUtf8("forged")));
        var real = await ReportAs(owner, Completed(a, ByteString.CopyFromUtf8("real")));

        Assert.Equal([a.FencingToken], intruder.RevokedTokens);
        Assert.Equal(ReportOutcome.NotOwner, forged);
        Assert.Equal(ReportOutcome.Accepted, real);
        Assert.Equal("real", (await Store.GetStepOutputAsync(run.Id, "a"))!.Data.ToStringUtf8());
    }

    [Fact]
    public async Task RenewLeases_FromASupersededSession_NotRenewedAndToldToStop()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        var old = await Connect("agent-1", slots: 1);
        var a = Assert.Single(await ClaimIn(old, 1));
        var current = await Connect("agent-1", slots: 1, running: [Ref(a)]);

        // Only the superseded stream keeps heartbeating: the lease runs out as if nobody did.
        Time.Advance(Options.LeaseDuration / 2);
        var stop = await Store.RenewLeasesAsync("agent-1", [Ref(a)], old.SessionId);
        var stopOther = await Store.RenewLeasesAsync("agent-2", [Ref(a)]);
        Time.Advance((Options.LeaseDuration / 2) + TimeSpan.FromSeconds(1));
        var reaped = await Store.RunMaintenanceAsync(100);

        Assert.Equal([a.FencingToken], stop);
        Assert.Equal([a.FencingToken], stopOther);
        Assert.Equal(1, reaped.LeasesExpired);
        Assert.Equal(StepState.Ready, StepOf((await Store.GetRunAsync(run.Id))!, "a").State);
        Assert.NotEqual(old.SessionId, current.SessionId);
    }

    [Fact]
    public async Task RenewLeases_FromTheSessionThatHoldsTheAttempt_Renewed()
    {
        var run = (await Store.SubmitRunAsync(Run(Shell("a")), null)).Run;
        var old = await Connect("agent-1", slots: 1);
        var a = Assert.Single(await ClaimIn(old, 1));
        var current = await Connect("agent-1", slots: 1, running: [Ref(a)]);

        Time.Advance(Options.LeaseDuration / 2);
        var stop = await Store.RenewLeasesAsync("agent-1", [Ref(a)], current.SessionId);
        Time.Advance((Options.LeaseDuration / 2) + TimeSpan.FromSeconds(1));
        var reaped = await Store.RunMaintenanceAsync(100);

        Assert.Empty(stop);
        Assert.Equal(0, reaped.LeasesExpired);
        Assert.Equal(StepState.Assigned, StepOf((await Store.GetRunAsync(run.Id))!, "a").State);
    }

    [Fact]
    public async Task Claim_FencingTokens_StrictlyIncreaseAcrossClaimsAndAttempts()
    {
        await Store.SubmitRunAsync(Run(Shell("a").With(s => s.Retry = new RetryPolicy { MaxAttempts = 3 }), Shell("b"), Shell("c")), null);
        var session = await Connect("agent-1", slots: 3);
        var tokens = new List<long>();
        var first = await ClaimIn(session, 1);
        tokens.AddRange(first.Select(a => a.FencingToken));
        tokens.AddRange((await ClaimIn(session, 2)).OrderBy(a => a.FencingToken).Select(a => a.FencingToken));
        await ReportAs(session, Failed(first[0], "again"));
        Time.Advance(TimeSpan.FromMinutes(5));
        await Store.RunMaintenanceAsync(100);
        tokens.AddRange((await ClaimIn(session, 1)).Select(a => a.FencingToken));

        Assert.Equal(4, tokens.Count);
        Assert.All(tokens, t => Assert.True(t > 0));
        Assert.Equal(tokens.Order(), tokens);
        Assert.Equal(tokens.Count, tokens.Distinct().Count());
    }

    private async Task<List<Assignment>> ClaimIn(AgentSession session, int max) =>
        [.. await Store.ClaimAsync(new ClaimRequest(session.AgentId, max) { SessionId = session.SessionId })];

    private async Task<ReportOutcome> ReportAs(AgentSession session, AttemptReport report) =>
        (await Store.ReportAsync([report with { AgentId = session.AgentId, SessionId = session.SessionId }])).Single();

    private static AttemptReport Started(Assignment a) =>
        new(Ref(a), new ConnectRequest { StepStarted = new StepStarted { FencingToken = a.FencingToken } });
}
