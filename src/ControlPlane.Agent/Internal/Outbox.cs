using System.Threading.Channels;
using ControlPlane.V1;

namespace ControlPlane.Agent.Internal;

/// <summary>
/// Step reports waiting to be written, kept across reconnects: a report leaves only after a write
/// succeeded, so a dropped stream loses nothing (the scheduler refuses stale ones by fencing token).
/// </summary>
internal sealed class Outbox(int capacity)
{
    private const int MaxLinesPerBatch = 500;
    private readonly List<ConnectRequest> _items = [];
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private long _dropped;

    /// <summary>Reports dropped because the outbox was full (log lines and progress only).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public int Count
    {
        get
        {
            lock (_items)
            {
                return _items.Count;
            }
        }
    }

    /// <summary>Adds a report. When full, log lines and progress are dropped; results, checkpoints and starts are always kept.</summary>
    public bool Enqueue(ConnectRequest report)
    {
        lock (_items)
        {
            if (_items.Count >= capacity && report.MessageCase is ConnectRequest.MessageOneofCase.StepLog or ConnectRequest.MessageOneofCase.StepProgress)
            {
                Interlocked.Increment(ref _dropped);
                return false;
            }

            if (report.MessageCase is ConnectRequest.MessageOneofCase.StepCompleted or ConnectRequest.MessageOneofCase.StepFailed)
            {
                DropUnsentStart(TokenOf(report));
            }

            _items.Add(report);
        }

        Wake();
        return true;
    }

    /// <summary>
    /// The result implies the start: a Started still waiting here with nothing after it for the same attempt is dropped,
    /// and the scheduler records the start together with the result. A fast step then costs one report instead of two.
    /// </summary>
    private void DropUnsentStart(long token)
    {
        for (var i = _items.Count - 1; i >= 0; i--)
        {
            var item = _items[i];
            if (TokenOf(item) != token)
            {
                continue;
            }

            if (item.MessageCase == ConnectRequest.MessageOneofCase.StepStarted)
            {
                _items.RemoveAt(i);
            }

            return;
        }
    }

    /// <summary>Wakes the writer (new report, heartbeat due, state change).</summary>
    public void Wake() => _wake.Writer.TryWrite(true);

    public ValueTask<bool> WaitAsync(CancellationToken cancellationToken) => _wake.Reader.ReadAsync(cancellationToken);

    /// <summary>
    /// The next message to write and the reports it covers; consecutive log lines of one attempt and
    /// stream are merged into one StepLog. With <paramref name="maxReports"/> above 1, up to that many such
    /// messages (and about <paramref name="maxBytes"/>, though never fewer than one) leave together in one
    /// ReportBatch. Call <see cref="Commit"/> after the write succeeded.
    /// </summary>
    public (ConnectRequest Message, ConnectRequest[] Covered)? Peek(int maxReports = 1, int maxBytes = int.MaxValue)
    {
        lock (_items)
        {
            if (_items.Count == 0)
            {
                return null;
            }

            var (first, taken) = NextReport(0);
            if (maxReports <= 1 || taken == _items.Count)
            {
                return (first, _items.GetRange(0, taken).ToArray());
            }

            var batch = new ReportBatch { Reports = { first } };
            var bytes = first.CalculateSize();
            while (taken < _items.Count && batch.Reports.Count < maxReports)
            {
                var (report, count) = NextReport(taken);
                var size = report.CalculateSize();
                if (bytes + size > maxBytes)
                {
                    break;
                }

                batch.Reports.Add(report);
                bytes += size;
                taken += count;
            }

            var covered = _items.GetRange(0, taken).ToArray();
            return batch.Reports.Count == 1 ? (first, covered) : (new ConnectRequest { ReportBatch = batch }, covered);
        }
    }

    /// <summary>The report starting at <paramref name="start"/> and how many queued items it covers (several merged log lines, or one).</summary>
    private (ConnectRequest Report, int Count) NextReport(int start)
    {
        var first = _items[start];
        if (first.MessageCase != ConnectRequest.MessageOneofCase.StepLog)
        {
            return (first, 1);
        }

        var merged = new StepLog { FencingToken = first.StepLog.FencingToken, Stream = first.StepLog.Stream };
        var count = 0;
        for (var i = start; i < _items.Count; i++)
        {
            var item = _items[i];
            if (item.MessageCase != ConnectRequest.MessageOneofCase.StepLog
                || item.StepLog.FencingToken != merged.FencingToken
                || item.StepLog.Stream != merged.Stream
                || merged.Lines.Count + item.StepLog.Lines.Count > MaxLinesPerBatch && count > 0)
            {
                break;
            }

            merged.Lines.AddRange(item.StepLog.Lines);
            count++;
        }

        return (new ConnectRequest { StepLog = merged }, count);
    }

    /// <summary>Removes reports that were written.</summary>
    public void Commit(ConnectRequest[] covered)
    {
        lock (_items)
        {
            foreach (var item in covered)
            {
                var index = _items.FindIndex(i => ReferenceEquals(i, item));
                if (index >= 0)
                {
                    _items.RemoveAt(index);
                }
            }
        }
    }

    /// <summary>Drops every report of an attempt this agent no longer owns.</summary>
    public void RemoveAttempt(long fencingToken)
    {
        lock (_items)
        {
            _items.RemoveAll(i => TokenOf(i) == fencingToken);
        }
    }

    public static long TokenOf(ConnectRequest report) => report.MessageCase switch
    {
        ConnectRequest.MessageOneofCase.StepStarted => report.StepStarted.FencingToken,
        ConnectRequest.MessageOneofCase.StepProgress => report.StepProgress.FencingToken,
        ConnectRequest.MessageOneofCase.StepCheckpoint => report.StepCheckpoint.FencingToken,
        ConnectRequest.MessageOneofCase.StepLog => report.StepLog.FencingToken,
        ConnectRequest.MessageOneofCase.StepCompleted => report.StepCompleted.FencingToken,
        ConnectRequest.MessageOneofCase.StepFailed => report.StepFailed.FencingToken,
        _ => 0,
    };
}
