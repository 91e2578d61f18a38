using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Services;

/// <summary>
/// Group commit for agent reports: every connection on this replica posts into one channel, and one loop
/// commits everything that arrived since its last store call (up to the batch size) in a single
/// ReportAsync, so store round trips per report fall as load rises.
/// </summary>
/// <remarks>
/// While the store is unreachable a batch is retried (with capped backoff) until it is stored or the replica gives
/// up at shutdown: an outage delays reports, it never refuses them. The channel is bounded, so while a batch waits
/// the connections stop reading their streams and HTTP/2 flow control holds the agents' reports on the agents.
/// </remarks>
internal sealed class ReportPipeline
{
    // Failures that are not an outage (a script error, a bug) are retried briefly, then the batch is refused.
    private static readonly TimeSpan[] RetryDelays = [TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(1)];

    // An outage is retried from short waits (a failover takes moments) up to one store call per MaxOutageDelay.
    private static readonly TimeSpan FirstOutageDelay = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxOutageDelay = TimeSpan.FromSeconds(1);

    private readonly Channel<PendingReport> _channel;
    private readonly TaskCompletionSource _giveUp = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly IRunStore _store;
    private readonly int _batchSize;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private Task? _loop;
    private long _commits;
    private long _committedReports;

    /// <param name="capacity">Reports queued at most; a post waits while it is full. Default: four batches.</param>
    public ReportPipeline(IRunStore store, int batchSize, ILogger logger, TimeProvider time, int? capacity = null)
    {
        _store = store;
        _batchSize = batchSize;
        _logger = logger;
        _time = time;
        _channel = Channel.CreateBounded<PendingReport>(new BoundedChannelOptions(capacity ?? batchSize * 4)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    /// <summary>Store calls made so far (each try counts).</summary>
    public long Commits => Interlocked.Read(ref _commits);

    /// <summary>Reports committed so far.</summary>
    public long CommittedReports => Interlocked.Read(ref _committedReports);

    public void Start() => _loop ??= Task.Run(RunAsync);

    /// <summary>
    /// Queues a report, waiting while the pipeline is full. <paramref name="onCommitted"/> runs on the pipeline loop
    /// with the store's verdict; it must not block. False once the pipeline is closed (the report is not recorded).
    /// </summary>
    public async ValueTask<bool> PostAsync(AttemptReport report, Action<CommitResult> onCommitted, CancellationToken cancellationToken)
    {
        try
        {
            await _channel.Writer.WriteAsync(new PendingReport(report, onCommitted), cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (ChannelClosedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Stops taking reports and waits until every queued one is committed. When <paramref name="cancellationToken"/>
    /// fires first, batches still waiting for an unreachable store are given up: the agents send their results again
    /// to the replica they reconnect to, as nothing acknowledged them.
    /// </summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        _channel.Writer.TryComplete();
        if (_loop is null)
        {
            return;
        }

        using var giveUp = cancellationToken.Register(() => _giveUp.TrySetResult());
        await _loop.ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
    }

    private async Task RunAsync()
    {
        var batch = new List<PendingReport>(_batchSize);
        var reports = new List<AttemptReport>(_batchSize);
        while (await _channel.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (batch.Count < _batchSize && _channel.Reader.TryRead(out var pending))
            {
                batch.Add(pending);
                reports.Add(pending.Report);
            }

            var (outcomes, error) = await CommitAsync(reports).ConfigureAwait(false);
            for (var i = 0; i < batch.Count; i++)
            {
                try
                {
                    batch[i].OnCommitted(new CommitResult(outcomes?[i], error));
                }
#pragma warning disable CA1031 // One connection's failure to take its outcome must not stop the replica's commits.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    SchedulerLog.StoreCallFailed(_logger, "report outcome delivery", ex);
                }
            }

            batch.Clear();
            reports.Clear();
        }
    }

    private async Task<(IReadOnlyList<ReportOutcome>? Outcomes, string? Error)> CommitAsync(List<AttemptReport> reports)
    {
        var failures = 0;
        var outage = 0;
        while (true)
        {
            try
            {
                Interlocked.Increment(ref _commits);
                var outcomes = await _store.ReportAsync(reports.ToArray()).ConfigureAwait(false);
                Interlocked.Add(ref _committedReports, reports.Count);
                if (outage > 0)
                {
                    SchedulerLog.ReportBatchStoredAfterOutage(_logger, reports.Count, outage);
                }

                return (outcomes, null);
            }
            catch (RunStoreException ex) when (ex.Error == RunStoreError.Unavailable)
            {
                // Never refused for an outage: the attempts keep running, and their results wait here (and on the agents).
                outage++;
                if (outage == 1 || outage % 10 == 0)
                {
                    SchedulerLog.ReportBatchWaitingForStore(_logger, reports.Count, outage, ex);
                }

                var delay = TimeSpan.FromTicks(Math.Min(MaxOutageDelay.Ticks, FirstOutageDelay.Ticks << Math.Min(outage - 1, 16)));
                if (_giveUp.Task.IsCompleted || !await DelayAsync(delay).ConfigureAwait(false))
                {
                    SchedulerLog.ReportBatchGivenUp(_logger, reports.Count);
                    return (null, null);
                }
            }
#pragma warning disable CA1031 // A failure that is not an outage is reported to the agents as refused reports, never thrown into the loop.
            catch (Exception ex) when (ex is not RunStoreException && failures < RetryDelays.Length)
            {
                SchedulerLog.ReportBatchRetry(_logger, reports.Count, failures + 1, ex);
                if (!await DelayAsync(RetryDelays[failures++]).ConfigureAwait(false))
                {
                    SchedulerLog.ReportBatchGivenUp(_logger, reports.Count);
                    return (null, null);
                }
            }
            catch (Exception ex)
#pragma warning restore CA1031
            {
                SchedulerLog.ReportBatchFailed(_logger, reports.Count, ex);
                return (null, $"the run store refused the report: {ex.Message}");
            }
        }
    }

    /// <summary>Waits; false when the replica gave up waiting (shutdown ran out of time).</summary>
    private async Task<bool> DelayAsync(TimeSpan delay)
    {
        // (A timer left behind by giving up fires within MaxOutageDelay and does nothing.)
        var elapsed = Task.Delay(delay, _time);
        return await Task.WhenAny(elapsed, _giveUp.Task).ConfigureAwait(false) == elapsed;
    }

    private readonly record struct PendingReport(AttemptReport Report, Action<CommitResult> OnCommitted);
}

/// <summary>
/// What became of one report: <see cref="Outcome"/> is the store's verdict; without one, <see cref="Error"/> says why
/// the store refused it for good, and neither means it was not recorded because the replica stopped waiting for the
/// store (the agent sends its result again elsewhere).
/// </summary>
internal readonly record struct CommitResult(ReportOutcome? Outcome, string? Error);
