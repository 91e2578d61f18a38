using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Services;

/// <summary>
/// Group commit for agent reports: every connection on this replica posts into one channel, and one loop
/// commits everything that arrived since its last store call (up to the batch size) in a single
/// ReportAsync, so store round trips per report fall as load rises.
/// </summary>
internal sealed class ReportPipeline
{
    private static readonly TimeSpan[] RetryDelays = [TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(1)];

    private readonly Channel<PendingReport> _channel = Channel.CreateUnbounded<PendingReport>(new UnboundedChannelOptions { SingleReader = true });
    private readonly IRunStore _store;
    private readonly int _batchSize;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private Task? _loop;
    private long _commits;
    private long _committedReports;

    public ReportPipeline(IRunStore store, int batchSize, ILogger logger, TimeProvider time)
    {
        _store = store;
        _batchSize = batchSize;
        _logger = logger;
        _time = time;
    }

    /// <summary>Store calls made so far.</summary>
    public long Commits => Interlocked.Read(ref _commits);

    /// <summary>Reports committed so far.</summary>
    public long CommittedReports => Interlocked.Read(ref _committedReports);

    public void Start() => _loop ??= Task.Run(RunAsync);

    /// <summary>
    /// Queues a report; <paramref name="onOutcome"/> runs on the pipeline loop with the store's verdict, or null
    /// when the store could not be reached. It must not block. False once the pipeline is closed.
    /// </summary>
    public bool Post(AttemptReport report, Action<ReportOutcome?> onOutcome) =>
        _channel.Writer.TryWrite(new PendingReport(report, onOutcome));

    /// <summary>Stops taking reports and waits until every queued one is committed.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        _channel.Writer.TryComplete();
        if (_loop is not null)
        {
            await _loop.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
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

            var outcomes = await CommitAsync(reports).ConfigureAwait(false);
            for (var i = 0; i < batch.Count; i++)
            {
                try
                {
                    batch[i].OnOutcome(outcomes is null ? null : outcomes[i]);
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

    private async Task<IReadOnlyList<ReportOutcome>?> CommitAsync(List<AttemptReport> reports)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                Interlocked.Increment(ref _commits);
                var outcomes = await _store.ReportAsync(reports.ToArray()).ConfigureAwait(false);
                Interlocked.Add(ref _committedReports, reports.Count);
                return outcomes;
            }
#pragma warning disable CA1031 // A store outage is reported to the agents as refused results, never thrown into the loop.
            catch (Exception ex) when (ex is not RunStoreException { Error: not RunStoreError.Unavailable } && attempt < RetryDelays.Length)
            {
                SchedulerLog.ReportBatchRetry(_logger, reports.Count, attempt + 1, ex);
                await Task.Delay(RetryDelays[attempt], _time).ConfigureAwait(false);
            }
            catch (Exception ex)
#pragma warning restore CA1031
            {
                SchedulerLog.ReportBatchFailed(_logger, reports.Count, ex);
                return null;
            }
        }
    }

    private readonly record struct PendingReport(AttemptReport Report, Action<ReportOutcome?> OnOutcome);
}
