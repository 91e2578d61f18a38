using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Grpc.Core;
using Xunit;

namespace ControlPlane.Client.Tests;

public sealed class ControlPlaneClientTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private TestRunService _service = null!;

    public async Task InitializeAsync() => _service = await TestRunService.StartAsync();

    public async Task DisposeAsync() => await _service.DisposeAsync();

    private ControlPlaneClient Client(Action<ControlPlaneClientOptions>? configure = null, string? address = null)
    {
        var options = new ControlPlaneClientOptions
        {
            Address = address ?? _service.Address,
            RetryBaseDelay = TimeSpan.FromMilliseconds(10),
            RetryMaxDelay = TimeSpan.FromMilliseconds(50),
        };
        configure?.Invoke(options);
        return new ControlPlaneClient(options);
    }

    private static RunSpec Spec(params string[] stepIds)
    {
        var spec = new RunSpec { Name = "test" };
        foreach (var id in stepIds)
        {
            spec.Steps.Add(new StepSpec { Id = id, Framework = "shell", Command = "true" });
        }

        return spec;
    }

    private static async Task<List<long>> CollectSeqs(IAsyncEnumerable<RunEvent> events)
    {
        var seqs = new List<long>();
        await foreach (var e in events)
        {
            seqs.Add(e.Seq);
        }

        return seqs;
    }

    [Fact]
    public async Task WatchRunAsync_TerminalRun_ReplaysEveryEventThenEnds()
    {
        var run = _service.AddRun(Spec("a", "b"));
        _service.StepEvent(run.Id, "a", StepState.Ready, StepState.Running);
        _service.StepEvent(run.Id, "a", StepState.Running, StepState.Succeeded);
        _service.Finish(run.Id, RunState.Succeeded);
        using var client = Client();

        var seqs = await CollectSeqs(client.WatchRunAsync(run.Id)).WaitAsync(Timeout);

        Assert.Equal([1, 2, 3, 4], seqs);
    }

    [Fact]
    public async Task WatchRunAsync_AfterSeq_SendsOnlyLaterEvents()
    {
        var run = _service.AddRun(Spec("a"));
        _service.StepEvent(run.Id, "a", StepState.Ready, StepState.Running);
        _service.Finish(run.Id, RunState.Failed);
        using var client = Client();

        var seqs = await CollectSeqs(client.WatchRunAsync(run.Id, afterSeq: 2)).WaitAsync(Timeout);

        Assert.Equal([3], seqs);
        Assert.Equal([2], _service.WatchAfterSeqs);
    }

    [Fact]
    public async Task WatchRunAsync_LiveRun_TailsNewEventsUntilTerminal()
    {
        var run = _service.AddRun(Spec("a"));
        using var client = Client();
        await using var events = client.WatchRunAsync(run.Id).GetAsyncEnumerator();

        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Timeout));
        Assert.Equal(1, events.Current.Seq);
        var next = events.MoveNextAsync().AsTask();
        Assert.False(next.IsCompleted);
        _service.StepEvent(run.Id, "a", StepState.Ready, StepState.Running);
        Assert.True(await next.WaitAsync(Timeout));
        Assert.Equal(StepState.Running, events.Current.StepStateChanged.ToState);
        _service.Finish(run.Id, RunState.Succeeded);
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Timeout));
        Assert.Equal(RunState.Succeeded, events.Current.RunStateChanged.ToState);

        Assert.False(await events.MoveNextAsync().AsTask().WaitAsync(Timeout));
    }

    [Fact]
    public async Task WatchRunAsync_ServerEndsStreamWithUnavailable_ResumesFromLastSeqExactlyOnce()
    {
        var run = _service.AddRun(Spec("a", "b"));
        _service.StepEvent(run.Id, "a", StepState.Ready, StepState.Running);
        _service.StepEvent(run.Id, "a", StepState.Running, StepState.Succeeded);
        _service.StepEvent(run.Id, "b", StepState.Blocked, StepState.Ready);
        _service.StepEvent(run.Id, "b", StepState.Ready, StepState.Running);
        _service.Finish(run.Id, RunState.Succeeded);
        _service.CutNextWatchAfter(2);
        using var client = Client();

        var seqs = await CollectSeqs(client.WatchRunAsync(run.Id)).WaitAsync(Timeout);

        Assert.Equal([1, 2, 3, 4, 5, 6], seqs);
        Assert.Equal([0, 2], _service.WatchAfterSeqs);
    }

    [Fact]
    public async Task WatchRunAsync_ConnectionCutMidStream_ResumesWithoutLossOrDuplicates()
    {
        var run = _service.AddRun(Spec("a", "b"));
        for (var i = 0; i < 4; i++)
        {
            _service.Append(run.Id, new RunEvent { StepProgressed = new StepProgressed { StepId = "a", Attempt = 1, Percent = i * 10 } });
        }

        await using var proxy = new TcpCutProxy(_service.Port);
        using var client = Client(address: proxy.Address);
        var seqs = new List<long>();
        await using var events = client.WatchRunAsync(run.Id).GetAsyncEnumerator();
        for (var i = 0; i < 3; i++)
        {
            Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Timeout));
            seqs.Add(events.Current.Seq);
        }

        // Cut the TCP connection under the open stream, then let the run go on.
        proxy.CutAll();
        _service.StepEvent(run.Id, "a", StepState.Ready, StepState.Succeeded);
        _service.StepEvent(run.Id, "b", StepState.Blocked, StepState.Running);
        _service.StepEvent(run.Id, "b", StepState.Running, StepState.Succeeded);
        _service.Finish(run.Id, RunState.Succeeded);
        while (await events.MoveNextAsync().AsTask().WaitAsync(Timeout))
        {
            seqs.Add(events.Current.Seq);
        }

        Assert.Equal(Enumerable.Range(1, 9).Select(i => (long)i), seqs);
        Assert.True(proxy.Accepted >= 2, $"the client should have reconnected; connections: {proxy.Accepted}");
        var afterSeqs = _service.WatchAfterSeqs.ToArray();
        Assert.Equal(0, afterSeqs[0]);
        Assert.True(afterSeqs.Length >= 2 && afterSeqs[1] >= 3, $"the reconnect must resume after the last event received; after_seqs: {string.Join(",", afterSeqs)}");
    }

    [Fact]
    public async Task WatchRunAsync_ConnectionBlackholedMidStream_NoticedByKeepAliveAndResumes()
    {
        var run = _service.AddRun(Spec("a"));
        _service.StepEvent(run.Id, "a", StepState.Ready, StepState.Running);
        await using var proxy = new TcpCutProxy(_service.Port);
        using var client = Client(
            o =>
            {
                o.KeepAlivePingDelay = TimeSpan.FromSeconds(1);
                o.KeepAlivePingTimeout = TimeSpan.FromSeconds(1);
            },
            proxy.Address);
        var seqs = new List<long>();
        await using var events = client.WatchRunAsync(run.Id).GetAsyncEnumerator();
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Timeout));
        seqs.Add(events.Current.Seq);

        // Nothing flows any more and nothing is closed: only an unanswered keep-alive ping can tell.
        Assert.Equal(1, proxy.BlackholeAll());
        _service.StepEvent(run.Id, "a", StepState.Running, StepState.Succeeded);
        _service.Finish(run.Id, RunState.Succeeded);
        while (await events.MoveNextAsync().AsTask().WaitAsync(Timeout))
        {
            seqs.Add(events.Current.Seq);
        }

        Assert.Equal([1L, 2, 3, 4], seqs);
        Assert.True(proxy.Accepted >= 2, $"the client should have reconnected; connections: {proxy.Accepted}");
    }

    [Fact]
    public async Task WatchRunAsync_UnknownRun_ThrowsNotFound()
    {
        using var client = Client();

        var ex = await Assert.ThrowsAsync<RpcException>(() => CollectSeqs(client.WatchRunAsync("r-404")).WaitAsync(Timeout));

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
        Assert.Contains("r-404", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetRunAsync_UnknownRun_ThrowsRpcExceptionWithServerStatus()
    {
        using var client = Client();

        var ex = await Assert.ThrowsAsync<RpcException>(() => client.GetRunAsync("r-404").WaitAsync(Timeout));

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
        Assert.Equal("run r-404 not found", ex.Status.Detail);
    }

    [Fact]
    public async Task GetRunAsync_UnavailableTwice_RetriesAndReturnsRun()
    {
        var run = _service.AddRun(Spec("a"));
        _service.FailNext("GetRun", 2, StatusCode.Unavailable);
        using var client = Client();

        var fetched = await client.GetRunAsync(run.Id).WaitAsync(Timeout);

        Assert.Equal(run.Id, fetched.Id);
        Assert.Equal(3, _service.Calls("GetRun"));
    }

    [Fact]
    public async Task GetRunAsync_UnavailableBeyondRetries_ThrowsAfterLastAttempt()
    {
        var run = _service.AddRun(Spec("a"));
        _service.FailNext("GetRun", 10, StatusCode.Unavailable);
        using var client = Client(o => o.MaxRetryAttempts = 2);

        var ex = await Assert.ThrowsAsync<RpcException>(() => client.GetRunAsync(run.Id).WaitAsync(Timeout));

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Equal(3, _service.Calls("GetRun"));
    }

    [Fact]
    public async Task GetRunAsync_NonRetryableStatus_IsNotRetried()
    {
        var run = _service.AddRun(Spec("a"));
        _service.FailNext("GetRun", 1, StatusCode.Internal);
        using var client = Client();

        var ex = await Assert.ThrowsAsync<RpcException>(() => client.GetRunAsync(run.Id).WaitAsync(Timeout));

        Assert.Equal(StatusCode.Internal, ex.StatusCode);
        Assert.Equal(1, _service.Calls("GetRun"));
    }

    [Fact]
    public async Task SubmitRunAsync_WithoutIdempotencyKey_IsNotRetried()
    {
        _service.FailNext("SubmitRun", 1, StatusCode.Unavailable);
        using var client = Client();

        var ex = await Assert.ThrowsAsync<RpcException>(() => client.SubmitRunAsync(Spec("a")).WaitAsync(Timeout));

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Equal(1, _service.Calls("SubmitRun"));
    }

    [Fact]
    public async Task SubmitRunAsync_WithIdempotencyKey_RetriesAndReturnsTheSameRunAgain()
    {
        _service.FailNext("SubmitRun", 1, StatusCode.Unavailable);
        using var client = Client();

        var first = await client.SubmitRunAsync(Spec("a"), "key-1").WaitAsync(Timeout);
        var second = await client.SubmitRunAsync(Spec("a"), "key-1").WaitAsync(Timeout);

        Assert.Equal(3, _service.Calls("SubmitRun"));
        Assert.True(first.Created);
        Assert.False(second.Created);
        Assert.Equal(first.Run.Id, second.Run.Id);
    }

    [Fact]
    public async Task CancelRunAsync_Unavailable_IsNotRetried()
    {
        var run = _service.AddRun(Spec("a"));
        _service.FailNext("CancelRun", 1, StatusCode.Unavailable);
        using var client = Client();

        await Assert.ThrowsAsync<RpcException>(() => client.CancelRunAsync(run.Id).WaitAsync(Timeout));

        Assert.Equal(1, _service.Calls("CancelRun"));
    }

    [Fact]
    public async Task SubmitRunAsync_InvalidSpec_SurfacesEveryViolationWithItsFieldPath()
    {
        var spec = Spec("a", "b");
        spec.Steps[1].Needs.Add("missing");
        spec.Steps[0].Framework = "perl";
        using var client = Client();

        var ex = await Assert.ThrowsAsync<RpcException>(() => client.SubmitRunAsync(spec).WaitAsync(Timeout));
        var violations = ex.GetFieldViolations();

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Equal(["steps[0].framework", "steps[1].needs[0]"], violations.Select(v => v.Field));
    }

    [Fact]
    public async Task Calls_WithBearerToken_SendAuthorizationMetadata()
    {
        var run = _service.AddRun(Spec("a"));
        using var client = Client(o => o.BearerToken = "s3cret");

        await client.GetRunAsync(run.Id).WaitAsync(Timeout);

        Assert.Equal("Bearer s3cret", _service.LastHeaders?.GetValue("authorization"));
    }

    [Fact]
    public async Task Calls_WithNamespace_SendNamespaceMetadataOnUnaryAndStreamingCalls()
    {
        var run = _service.AddRun(Spec("a"));
        _service.Finish(run.Id, RunState.Succeeded);
        using var client = Client(o => o.Namespace = "team-a.ci_1");

        await client.GetRunAsync(run.Id).WaitAsync(Timeout);
        await client.SubmitRunAsync(Spec("b")).WaitAsync(Timeout);
        await CollectSeqs(client.WatchRunAsync(run.Id)).WaitAsync(Timeout);

        Assert.Equal("team-a.ci_1", _service.Headers["GetRun"].GetValue("cp-namespace"));
        Assert.Equal("team-a.ci_1", _service.Headers["SubmitRun"].GetValue("cp-namespace"));
        Assert.Equal("team-a.ci_1", _service.Headers["WatchRun"].GetValue("cp-namespace"));
    }

    [Fact]
    public async Task Calls_WithNamespaceAndBearerToken_SendBoth()
    {
        var run = _service.AddRun(Spec("a"));
        using var client = Client(o =>
        {
            o.BearerToken = "s3cret";
            o.Namespace = "team-a";
        });

        await client.GetRunAsync(run.Id).WaitAsync(Timeout);

        Assert.Equal("Bearer s3cret", _service.Headers["GetRun"].GetValue("authorization"));
        Assert.Equal("team-a", _service.Headers["GetRun"].GetValue("cp-namespace"));
    }

    [Fact]
    public async Task Calls_WithoutNamespace_SendNoNamespaceMetadata()
    {
        var run = _service.AddRun(Spec("a"));
        using var client = Client();

        await client.GetRunAsync(run.Id).WaitAsync(Timeout);

        Assert.Null(_service.Headers["GetRun"].Get("cp-namespace"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("Team-A")]
    [InlineData("-team")]
    [InlineData("*")]
    [InlineData("team a")]
    [InlineData("a234567890123456789012345678901234567890123456789012345678901234")]
    public void Constructor_BadNamespace_ThrowsNamingTheOptionAndPattern(string value)
    {
        var ex = Assert.Throws<ArgumentException>(() => new ControlPlaneClient(new ControlPlaneClientOptions { Namespace = value }));

        Assert.Equal(nameof(ControlPlaneClientOptions.Namespace), ex.ParamName);
        Assert.Contains("ControlPlaneClientOptions.Namespace", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[a-z0-9][a-z0-9._-]{0,62}", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a")]
    [InlineData("default")]
    [InlineData("a23456789012345678901234567890123456789012345678901234567890123")]
    public void Constructor_GoodNamespace_IsAccepted(string value)
    {
        using var client = new ControlPlaneClient(new ControlPlaneClientOptions { Namespace = value });

        Assert.NotNull(client);
    }

    [Fact]
    public async Task Calls_DefaultDeadline_AppliesToUnaryCallsButNotToWatch()
    {
        var run = _service.AddRun(Spec("a"));
        _service.Finish(run.Id, RunState.Succeeded);
        using var client = Client(o => o.DefaultDeadline = TimeSpan.FromMinutes(5));
        var before = DateTime.UtcNow;

        await client.GetRunAsync(run.Id).WaitAsync(Timeout);
        await CollectSeqs(client.WatchRunAsync(run.Id)).WaitAsync(Timeout);

        var deadline = _service.Deadlines["GetRun"];
        Assert.InRange(deadline, before.AddMinutes(4), DateTime.UtcNow.AddMinutes(5).AddSeconds(1));
        Assert.Equal(DateTime.MaxValue, _service.Deadlines["WatchRun"]);
    }

    [Fact]
    public async Task RunActions_RoundTrip_ReturnTheRunInItsNewState()
    {
        var spec = Spec("a");
        spec.Steps.Add(new StepSpec { Id = "approve", Kind = StepKind.Gate, Needs = { "a" } });
        var run = _service.AddRun(spec);
        using var client = Client();

        Assert.Equal(RunState.Paused, (await client.PauseRunAsync(run.Id)).State);
        Assert.Equal(RunState.Running, (await client.ResumeRunAsync(run.Id)).State);
        var approved = await client.ApproveGateAsync(run.Id, "approve", approve: false, decidedBy: "alice", comment: "not today");
        Assert.Equal("alice", approved.Steps.Single(s => s.Id == "approve").DecidedBy);
        Assert.Equal("output of a\n", (await client.GetStepOutputAsync(run.Id, "a")).Data.ToStringUtf8());
        Assert.Equal(RunState.Cancelling, (await client.CancelRunAsync(run.Id, "enough")).State);
        var fpe = await Assert.ThrowsAsync<RpcException>(() => client.ApproveGateAsync(run.Id, "nope"));
        Assert.Equal(StatusCode.NotFound, fpe.StatusCode);
    }

    [Fact]
    public async Task ListRunsAsync_FilterAndPaging_ReturnsMatchingRunsNewestFirst()
    {
        var labelled = Spec("a");
        labelled.Labels["team"] = "vision";
        var r1 = _service.AddRun(labelled);
        _service.AddRun(Spec("a"));
        var r3 = _service.AddRun(labelled);
        using var client = Client();

        var request = new ListRunsRequest { PageSize = 1, Labels = { ["team"] = "vision" } };
        var page1 = await client.ListRunsAsync(request);
        request.PageToken = page1.NextPageToken;
        var page2 = await client.ListRunsAsync(request);

        Assert.Equal([r3.Id], page1.Runs.Select(r => r.Id));
        Assert.Equal([r1.Id], page2.Runs.Select(r => r.Id));
        Assert.Empty(page2.NextPageToken);
    }

    [Fact]
    public async Task Agents_ListAndDrain_RoundTrip()
    {
        _service.AddAgent(new V1.Agent { AgentId = "agent-1", Slots = 4, State = AgentState.Connected });
        using var client = Client();

        var agents = await client.ListAgentsAsync();
        var drained = await client.DrainAgentAsync("agent-1");

        Assert.Equal("agent-1", Assert.Single(agents).AgentId);
        Assert.Equal(AgentState.Draining, drained.State);
    }

    [Theory]
    [InlineData("127.0.0.1:7070", "Address")]
    [InlineData("ftp://host:1", "Address")]
    public void Constructor_BadAddress_ThrowsNamingTheOption(string address, string expected)
    {
        var ex = Assert.Throws<ArgumentException>(() => new ControlPlaneClient(new ControlPlaneClientOptions { Address = address }));

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Contains("http://127.0.0.1:7070", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_NegativeRetries_ThrowsNamingTheOption()
    {
        var ex = Assert.Throws<ArgumentException>(() => new ControlPlaneClient(new ControlPlaneClientOptions { MaxRetryAttempts = -1 }));

        Assert.Contains("MaxRetryAttempts", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetRunAsync_NoServer_ThrowsUnavailableAfterRetries()
    {
        using var client = Client(o =>
        {
            o.Address = "http://127.0.0.1:1";
            o.MaxRetryAttempts = 1;
        });

        var ex = await Assert.ThrowsAsync<RpcException>(() => client.GetRunAsync("r-1").WaitAsync(Timeout));

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
    }
}
