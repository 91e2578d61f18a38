using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace ControlPlane.Agent.Tests;

/// <summary>One agent stream on the <see cref="FakeScheduler"/>: records every message and lets the test answer.</summary>
public sealed class FakeConnection(IServerStreamWriter<ConnectResponse> responses)
{
    private readonly object _gate = new();
    private readonly List<ConnectRequest> _received = [];
    private readonly List<ReportBatch> _batches = [];
    private readonly List<(Func<ConnectRequest, bool> Match, int Count, TaskCompletionSource<ConnectRequest> Done)> _waiters = [];
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly CancellationTokenSource _abort = new();
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The request headers the agent opened this stream with.</summary>
    public Metadata RequestHeaders { get; init; } = [];

    /// <summary>Sent in Welcome: above 0, the agent may send ReportBatch. Default is 0, as from a scheduler that predates batches.</summary>
    public int MaxReportBatch { get; set; }

    /// <summary>Sent in Welcome: the agent keeps each result until <see cref="AcknowledgeAsync"/>. Default is false, as from a scheduler that predates acknowledgements.</summary>
    public bool AcknowledgesResults { get; set; }

    /// <summary>Sent in Welcome: the agent may send StepDeclined. Default is false.</summary>
    public bool AcceptsDeclines { get; set; }

    /// <summary>Sent in Welcome: a heartbeat renews leases only once <see cref="AcceptHeartbeatAsync"/> says so. Default is false.</summary>
    public bool AcknowledgesHeartbeats { get; set; }

    /// <summary>The ReportBatch messages received; their reports are also in <see cref="Received"/>, in order.</summary>
    public IReadOnlyList<ReportBatch> Batches
    {
        get
        {
            lock (_gate)
            {
                return _batches.ToArray();
            }
        }
    }

    /// <summary>Completes when the agent half-closed its side (a clean goodbye).</summary>
    public Task Ended => _ended.Task;

    public IReadOnlyList<ConnectRequest> Received
    {
        get
        {
            lock (_gate)
            {
                return _received.ToArray();
            }
        }
    }

    internal async Task ServeAsync(IAsyncStreamReader<ConnectRequest> requests, CancellationToken callCancelled)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(callCancelled, _abort.Token);
        try
        {
            while (await requests.MoveNext(linked.Token))
            {
                Record(requests.Current);
            }

            _ended.TrySetResult();
        }
        catch (OperationCanceledException) when (_abort.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "connection dropped by the test"));
        }
    }

    /// <summary>Ends the stream with UNAVAILABLE, as a crashing scheduler or a broken network would.</summary>
    public void Abort() => _abort.Cancel();

    public async Task SendAsync(ConnectResponse response)
    {
        await _writeLock.WaitAsync();
        try
        {
            await responses.WriteAsync(response);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public Task WelcomeAsync(TimeSpan? heartbeat = null, params long[] revoked)
    {
        var welcome = new Welcome
        {
            SchedulerId = "fake",
            HeartbeatInterval = Duration.FromTimeSpan(heartbeat ?? TimeSpan.FromHours(1)),
            LeaseDuration = Duration.FromTimeSpan(TimeSpan.FromSeconds(30)),
            MaxReportBatch = MaxReportBatch,
            AcknowledgesResults = AcknowledgesResults,
            AcceptsDeclines = AcceptsDeclines,
            AcknowledgesHeartbeats = AcknowledgesHeartbeats,
        };
        welcome.RevokedFencingTokens.AddRange(revoked);
        return SendAsync(new ConnectResponse { Welcome = welcome });
    }

    public Task AcknowledgeAsync(params long[] tokens) =>
        SendAsync(new ConnectResponse { ResultsAccepted = new ResultsAccepted { FencingTokens = { tokens } } });

    public Task AcceptHeartbeatAsync(long sequence) =>
        SendAsync(new ConnectResponse { HeartbeatAccepted = new HeartbeatAccepted { Sequence = sequence } });

    public Task AssignAsync(long token, StepSpec spec, int attempt = 1) =>
        SendAsync(new ConnectResponse { Assignment = new Assignment { RunId = "run-1", StepId = spec.Id, Attempt = attempt, FencingToken = token, Spec = spec } });

    /// <summary>The first message matching, already received or yet to come.</summary>
    public Task<ConnectRequest> WaitForAsync(Func<ConnectRequest, bool> match) => WaitForCountAsync(match, 1);

    /// <summary>Completes with the count-th message matching.</summary>
    public Task<ConnectRequest> WaitForCountAsync(Func<ConnectRequest, bool> match, int count)
    {
        lock (_gate)
        {
            var seen = _received.Where(match).Skip(count - 1).FirstOrDefault();
            if (seen is not null)
            {
                return Task.FromResult(seen);
            }

            var tcs = new TaskCompletionSource<ConnectRequest>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((match, count, tcs));
            return tcs.Task.WithTimeout();
        }
    }

    public async Task<Hello> HelloAsync() => (await WaitForAsync(m => m.Hello is not null)).Hello;

    public async Task<StepCompleted> CompletedAsync(long token) =>
        (await WaitForAsync(m => m.StepCompleted?.FencingToken == token)).StepCompleted;

    public async Task<StepFailed> FailedAsync(long token) =>
        (await WaitForAsync(m => m.StepFailed?.FencingToken == token)).StepFailed;

    public int IndexOf(Func<ConnectRequest, bool> match)
    {
        lock (_gate)
        {
            return _received.FindIndex(m => match(m));
        }
    }

    private void Record(ConnectRequest message)
    {
        lock (_gate)
        {
            // Like the scheduler, a batch counts as its reports one by one.
            if (message.ReportBatch is { } batch)
            {
                _batches.Add(batch);
                _received.AddRange(batch.Reports);
            }
            else
            {
                _received.Add(message);
            }

            foreach (var waiter in _waiters.ToArray())
            {
                if (_received.Count(waiter.Match) >= waiter.Count)
                {
                    waiter.Done.TrySetResult(_received.Where(waiter.Match).Skip(waiter.Count - 1).First());
                    _waiters.Remove(waiter);
                }
            }
        }
    }
}
