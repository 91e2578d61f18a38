using System.Text;
using System.Text.Json;
using ControlPlane.V1;
using Google.Protobuf;
using Google.Rpc;
using Grpc.Core;
using Xunit;
using M = ControlPlane.Scheduler.Tests.ServiceTestHost.Methods;
using static ControlPlane.Scheduler.Tests.ServiceRunServiceTests;

namespace ControlPlane.Scheduler.Tests;

/// <summary>RunService.WatchRuns over the embedded store: snapshot, live changes, filters, resuming and reset.</summary>
public sealed class ServiceWatchRunsTests : IAsyncLifetime
{
    internal static readonly Method<WatchRunsRequest, WatchRunsResponse> WatchRunsMethod = new(
        MethodType.ServerStreaming, "controlplane.v1.RunService", "WatchRuns",
        Marshallers.Create(m => m.ToByteArray(), WatchRunsRequest.Parser.ParseFrom),
        Marshallers.Create(m => m.ToByteArray(), WatchRunsResponse.Parser.ParseFrom));

    private ServiceTestHost _host = null!;

    public async Task InitializeAsync() => _host = await ServiceTestHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task WatchRuns_Snapshot_ThenCaughtUp_ThenLiveChanges()
    {
        var first = await Submit("first", Gate("g"));
        await _host.WaitForRunAsync(first.Id, r => r.Steps[0].State == StepState.WaitingApproval);

        using var watch = Watch(new WatchRunsRequest());
        var snapshot = await watch.ReadUntilAsync(m => m.CaughtUp);
        Assert.Equal([first.Id], snapshot.Where(m => m.Run is not null).Select(m => m.Run.Id));
        Assert.Empty(snapshot[0].Run.Steps);
        Assert.Empty(snapshot[0].Run.History);
        Assert.NotEmpty(snapshot[^1].Cursor);
        Assert.DoesNotContain(snapshot, m => m.Reset);

        var second = await Submit("second", Gate("g"));
        var seen = await watch.ReadUntilAsync(m => m.Run?.Id == second.Id);
        Assert.All(seen, m => Assert.NotEmpty(m.Cursor));

        await _host.Call(M.ApproveGate, new ApproveGateRequest { RunId = first.Id, StepId = "g", Decision = GateDecision.Approve });
        var done = await watch.ReadUntilAsync(m => m.Run?.Id == first.Id && m.Run.State == RunState.Succeeded);
        Assert.Empty(done[^1].Run.Steps);
    }

    [Fact]
    public async Task WatchRuns_FilteredByStateAndLabels_SendsMatchingRunsAndOnceMoreWhenOneLeaves()
    {
        var mine = await Submit("mine", Labelled(Spec("mine", Gate("g")), "team", "data"));
        var other = await Submit("other", Labelled(Spec("other", Gate("g")), "team", "web"));
        await _host.WaitForRunAsync(mine.Id, r => r.State == RunState.Running);
        await _host.WaitForRunAsync(other.Id, r => r.State == RunState.Running);

        var request = new WatchRunsRequest { State = RunState.Running };
        request.Labels["team"] = "data";
        using var watch = Watch(request);
        var snapshot = await watch.ReadUntilAsync(m => m.CaughtUp);
        Assert.Equal([mine.Id], snapshot.Where(m => m.Run is not null).Select(m => m.Run.Id));

        // The other team's run changes (not sent); then the watched one leaves RUNNING: sent once more as SUCCEEDED.
        await _host.Call(M.ApproveGate, new ApproveGateRequest { RunId = other.Id, StepId = "g", Decision = GateDecision.Approve });
        await _host.WaitForRunAsync(other.Id, r => r.State == RunState.Succeeded);
        await _host.Call(M.ApproveGate, new ApproveGateRequest { RunId = mine.Id, StepId = "g", Decision = GateDecision.Approve });
        var left = await watch.ReadUntilAsync(m => m.Run?.Id == mine.Id);
        Assert.Equal(RunState.Succeeded, left[^1].Run.State);
        Assert.DoesNotContain(left, m => m.Run?.Id == other.Id);

        // A new matching run is sent once it is RUNNING; the other team's is not.
        await Submit("other-2", Labelled(Spec("other-2", Gate("g")), "team", "web"));
        var next = await Submit("mine-2", Labelled(Spec("mine-2", Gate("g")), "team", "data"));
        var arrived = await watch.ReadUntilAsync(m => m.Run?.Id == next.Id);
        Assert.Equal(RunState.Running, arrived[^1].Run.State);
        Assert.All(arrived.Where(m => m.Run is not null), m => Assert.Equal("data", m.Run.Labels["team"]));
    }

    [Fact]
    public async Task WatchRuns_ResumedFromLastCursor_GetsEveryChangeMadeWhileAway()
    {
        var kept = await Submit("kept", Gate("g"));
        string cursor;
        using (var watch = Watch(new WatchRunsRequest()))
        {
            cursor = (await watch.ReadUntilAsync(m => m.CaughtUp))[^1].Cursor;
        }

        // While nobody watches: a new run, and the kept run finishes.
        var added = await Submit("added", Shell("a"));
        await _host.Call(M.ApproveGate, new ApproveGateRequest { RunId = kept.Id, StepId = "g", Decision = GateDecision.Approve });
        await _host.WaitForRunAsync(kept.Id, r => r.State == RunState.Succeeded);

        using var resumed = Watch(new WatchRunsRequest { AfterCursor = cursor });
        var replay = await resumed.ReadUntilAsync(m => m.CaughtUp);
        Assert.DoesNotContain(replay, m => m.Reset);
        Assert.Contains(replay, m => m.Run?.Id == added.Id);
        Assert.Equal(RunState.Succeeded, replay.Last(m => m.Run?.Id == kept.Id).Run.State);

        // Cursors only grow, and resuming from the last one replays nothing more.
        var cursors = replay.Select(m => long.Parse(m.Cursor, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(cursors.Order(), cursors);
        using var again = Watch(new WatchRunsRequest { AfterCursor = replay[^1].Cursor });
        var nothing = await again.ReadUntilAsync(m => m.CaughtUp);
        Assert.Single(nothing);
    }

    [Fact]
    public async Task WatchRuns_CursorOlderThanTheFeedKeeps_ResetAndFreshSnapshot()
    {
        var early = await Submit("early", Gate("g"));
        string cursor;
        using (var watch = Watch(new WatchRunsRequest()))
        {
            cursor = (await watch.ReadUntilAsync(m => m.CaughtUp))[^1].Cursor;
        }

        // More changes than the feed keeps (RunStoreOptions.RunFeedLength, 10,000 by default).
        for (var i = 0; i < RunStoreOptions.DefaultRunFeedLength + 1; i++)
        {
            await _host.Store.SubmitRunAsync(Spec("filler", Gate("g")), null);
        }

        using var resumed = Watch(new WatchRunsRequest { AfterCursor = cursor, SnapshotSize = 5 });
        var messages = await resumed.ReadUntilAsync(m => m.CaughtUp);
        Assert.True(messages[0].Reset);
        Assert.Equal(5, messages.Count(m => m.Run is not null));
        Assert.DoesNotContain(messages, m => m.Run?.Id == early.Id);
        Assert.Single(messages, m => m.Reset);
    }

    [Fact]
    public async Task WatchRuns_CursorAheadOfTheFeed_Reset()
    {
        var run = await Submit("only", Gate("g"));

        using var watch = Watch(new WatchRunsRequest { AfterCursor = "987654321" });
        var messages = await watch.ReadUntilAsync(m => m.CaughtUp);

        Assert.True(messages[0].Reset);
        Assert.Equal(run.Id, messages[0].Run.Id);
    }

    [Theory]
    [InlineData("state")]
    [InlineData("snapshot_size")]
    [InlineData("after_cursor")]
    [InlineData("labels")]
    public async Task WatchRuns_BadRequest_InvalidArgumentNamingTheField(string field)
    {
        var request = new WatchRunsRequest();
        switch (field)
        {
            case "state": request.State = (RunState)99; break;
            case "snapshot_size": request.SnapshotSize = 1001; break;
            case "after_cursor": request.AfterCursor = "not-a-cursor"; break;
            default: request.Labels[""] = "x"; break;
        }

        using var watch = Watch(request);
        var ex = await Assert.ThrowsAsync<RpcException>(() => watch.ReadUntilAsync(_ => true));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        var violation = Assert.Single(ex.GetRpcStatus()!.GetDetail<BadRequest>()!.FieldViolations);
        Assert.StartsWith(field, violation.Field, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WatchRuns_Shutdown_UnavailableSayingWhereToResume()
    {
        using var watch = Watch(new WatchRunsRequest());
        await watch.ReadUntilAsync(m => m.CaughtUp);

        var stopping = _host.Server.StopAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(() => watch.ReadUntilAsync(_ => false));
        await stopping;

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Contains("after_cursor", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WatchRuns_OverJson_NewlineDelimitedMessages()
    {
        var run = await Submit("json", Gate("g"));
        using var http = new HttpClient { BaseAddress = _host.Server.HttpAddress, Timeout = ServiceTestHost.Timeout };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/runs:watch") { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());

        var lines = new List<JsonElement>();
        while (lines.Count == 0 || !(lines[^1].TryGetProperty("caughtUp", out var caughtUp) && caughtUp.GetBoolean()))
        {
            var line = await reader.ReadLineAsync().WaitAsync(ServiceTestHost.Timeout);
            Assert.NotNull(line);
            if (line.Trim().Trim('[', ']', ',').Length > 0)
            {
                lines.Add(JsonDocument.Parse(line.Trim().Trim('[', ']').TrimEnd(',')).RootElement);
            }
        }

        Assert.Equal(run.Id, lines[0].GetProperty("run").GetProperty("id").GetString());
        Assert.Equal(2, lines.Count);
        Assert.NotEmpty(lines[^1].GetProperty("cursor").GetString()!);
    }

    private async Task<Run> Submit(string name, params StepSpec[] steps) =>
        (await _host.Call(M.SubmitRun, new SubmitRunRequest { Spec = Spec(name, steps) })).Run;

    private async Task<Run> Submit(string name, RunSpec spec)
    {
        spec.Name = name;
        return (await _host.Call(M.SubmitRun, new SubmitRunRequest { Spec = spec })).Run;
    }

    private static RunSpec Labelled(RunSpec spec, string key, string value)
    {
        spec.Labels[key] = value;
        return spec;
    }

    private WatchStream Watch(WatchRunsRequest request) =>
        new(_host.Channel.CreateCallInvoker().AsyncServerStreamingCall(WatchRunsMethod, null, default, request));

    /// <summary>A WatchRuns call read message by message, each wait bounded.</summary>
    internal sealed class WatchStream(AsyncServerStreamingCall<WatchRunsResponse> call) : IDisposable
    {
        /// <summary>Reads up to and including the first message that satisfies <paramref name="until"/>.</summary>
        public async Task<List<WatchRunsResponse>> ReadUntilAsync(Func<WatchRunsResponse, bool> until)
        {
            var read = new List<WatchRunsResponse>();
            while (true)
            {
                Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(ServiceTestHost.Timeout), "the stream ended");
                read.Add(call.ResponseStream.Current);
                if (until(read[^1]))
                {
                    return read;
                }
            }
        }

        public void Dispose() => call.Dispose();
    }
}
