using System.Threading.Channels;
using ControlPlane.V1;

namespace ControlPlane.Agent.Internal;

/// <summary>
/// Step reports waiting to be written, kept across reconnects: a report leaves only after a write
/// succeeded, so a dropped stream loses nothing (the scheduler refuses stale ones by fencing token).
/// A result stays after its write, until the scheduler acknowledges that it stored it (or refuses it),
/// and is written again after a reconnect.
/// </summary>
/// <remarks>
/// Bounded while the scheduler is unreachable: per attempt at most one progress and one checkpoint wait (a newer
/// one replaces the unsent older one), and log lines beyond <see cref="MaxLogBytesPerAttempt"/> per attempt or
/// <c>capacity</c> in all are dropped, then counted in a line of their own. Starts and results are never dropped;
/// there is one of each per attempt.
/// </remarks>
internal sealed class Outbox(int capacity)
{
    /// <summary>Log bytes of one attempt waiting to be written, at most; later lines are dropped and counted. 1 MiB.</summary>
    public const int MaxLogBytesPerAttempt = 1024 * 1024;

    private const int MaxLinesPerBatch = 500;
    private readonly List<ConnectRequest> _items = [];

    // Results written and not yet acknowledged, in the order they were written.
    private readonly List<ConnectRequest> _unacknowledged = [];

    // Per attempt: log bytes queued and lines dropped since the last marker line.
    private readonly Dictionary<long, LogBacklog> _logs = [];
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private int _queuedLogLines;
    private long _dropped;

    /// <summary>Reports dropped: log lines beyond the bounds, and progress or checkpoints replaced by a newer one before they were written.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Reports waiting to be written, and results written but not yet acknowledged.</summary>
    public int Count
    {
        get
        {
            lock (_items)
            {
                return _items.Count + _unacknowledged.Count;
            }
        }
    }

    /// <summary>
    /// Adds a report. A progress or checkpoint replaces the attempt's unsent one; a log line beyond the bounds is
    /// dropped (false) and counted; starts and results are always kept.
    /// </summary>
    public bool Enqueue(ConnectRequest report)
    {
        lock (_items)
        {
            var token = TokenOf(report);
            switch (report.MessageCase)
            {
                case ConnectRequest.MessageOneofCase.StepLog:
                    if (!AdmitLog(token, report.StepLog))
                    {
                        return false;
                    }

                    break;

                case ConnectRequest.MessageOneofCase.StepProgress or ConnectRequest.MessageOneofCase.StepCheckpoint:
                    // Only the latest matters: the scheduler keeps one progress and one checkpoint per attempt.
                    var older = _items.FindIndex(i => i.MessageCase == report.MessageCase && TokenOf(i) == token);
                    if (older >= 0)
                    {
                        _items.RemoveAt(older);
                        Interlocked.Increment(ref _dropped);
                    }

                    break;

                case ConnectRequest.MessageOneofCase.StepCompleted or ConnectRequest.MessageOneofCase.StepFailed:
                    DropUnsentStart(token);
                    AddDroppedMarker(token, LogStream.Stderr);
                    break;
            }

            _items.Add(report);
        }

        Wake();
        return true;
    }

    /// <summary>Whether a log report fits the bounds; counts it in, after the marker for lines dropped before it.</summary>
    private bool AdmitLog(long token, StepLog log)
    {
        var bytes = LineBytes(log);
        var backlog = _logs.GetValueOrDefault(token);
        if (backlog.Bytes + bytes > MaxLogBytesPerAttempt || _queuedLogLines + log.Lines.Count > capacity)
        {
            _logs[token] = backlog with { Dropped = backlog.Dropped + log.Lines.Count };
            Interlocked.Add(ref _dropped, log.Lines.Count);
            return false;
        }

        AddDroppedMarker(token, log.Stream);
        backlog = _logs.GetValueOrDefault(token);
        _logs[token] = backlog with { Bytes = backlog.Bytes + bytes };
        _queuedLogLines += log.Lines.Count;
        return true;
    }

    /// <summary>Queues one line saying how many of the attempt's log lines were dropped, when some were.</summary>
    private void AddDroppedMarker(long token, LogStream stream)
    {
        if (!_logs.TryGetValue(token, out var backlog) || backlog.Dropped == 0)
        {
            return;
        }

        var marker = new StepLog
        {
            FencingToken = token,
            Stream = stream,
            Lines = { $"[controlplane] {backlog.Dropped} log lines dropped: the agent holds at most {MaxLogBytesPerAttempt} bytes of a step's logs ({capacity} lines in all) while the scheduler is unreachable" },
        };
        _logs[token] = new LogBacklog(backlog.Bytes + LineBytes(marker), 0);
        _queuedLogLines++;
        _items.Add(new ConnectRequest { StepLog = marker });
    }

    private static int LineBytes(StepLog log)
    {
        var bytes = 0;
        foreach (var line in log.Lines)
        {
            bytes += System.Text.Encoding.UTF8.GetByteCount(line);
        }

        return bytes;
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

    /// <summary>
    /// Removes reports that were written. With <paramref name="keepResults"/> (the scheduler acknowledges results),
    /// StepCompleted, StepFailed and StepDeclined are kept until <see cref="Acknowledge"/> and written again after
    /// <see cref="ResendUnacknowledged"/>.
    /// </summary>
    public void Commit(ConnectRequest[] covered, bool keepResults = false)
    {
        lock (_items)
        {
            foreach (var item in covered)
            {
                var index = _items.FindIndex(i => ReferenceEquals(i, item));
                if (index < 0)
                {
                    continue;
                }

                _items.RemoveAt(index);
                if (item.StepLog is { } log)
                {
                    var token = log.FencingToken;
                    var backlog = _logs.GetValueOrDefault(token);
                    backlog = backlog with { Bytes = backlog.Bytes - LineBytes(log) };
                    _queuedLogLines -= log.Lines.Count;
                    if (backlog is { Bytes: <= 0, Dropped: 0 })
                    {
                        _logs.Remove(token);
                    }
                    else
                    {
                        _logs[token] = backlog;
                    }
                }
                else if (keepResults && IsResult(item))
                {
                    _unacknowledged.Add(item);
                }
            }
        }
    }

    /// <summary>
    /// The scheduler stored the attempt's result: it is not written again. The acknowledgement can overtake the
    /// writer's <see cref="Commit"/> (it answers the write the writer has just made), so a result still queued is
    /// dropped too, and Commit then finds nothing to keep. False when none was waiting.
    /// </summary>
    public bool Acknowledge(long fencingToken)
    {
        lock (_items)
        {
            var kept = _unacknowledged.RemoveAll(i => TokenOf(i) == fencingToken);
            var queued = _items.RemoveAll(i => IsResult(i) && TokenOf(i) == fencingToken);
            return kept + queued > 0;
        }
    }

    /// <summary>
    /// After a reconnect: results written to the previous stream and never acknowledged go out first on the new one
    /// (the scheduler may have died before storing them; one it did store is acknowledged again or revoked).
    /// </summary>
    public int ResendUnacknowledged()
    {
        lock (_items)
        {
            var count = _unacknowledged.Count;
            _items.InsertRange(0, _unacknowledged);
            _unacknowledged.Clear();
            return count;
        }
    }

    /// <summary>Drops every report of an attempt this agent no longer owns, unacknowledged results included.</summary>
    public void RemoveAttempt(long fencingToken)
    {
        lock (_items)
        {
            foreach (var item in _items)
            {
                if (item.StepLog is { } log && log.FencingToken == fencingToken)
                {
                    _queuedLogLines -= log.Lines.Count;
                }
            }

            _items.RemoveAll(i => TokenOf(i) == fencingToken);
            _unacknowledged.RemoveAll(i => TokenOf(i) == fencingToken);
            _logs.Remove(fencingToken);
        }
    }

    private static bool IsResult(ConnectRequest report) =>
        report.MessageCase is ConnectRequest.MessageOneofCase.StepCompleted or ConnectRequest.MessageOneofCase.StepFailed or ConnectRequest.MessageOneofCase.StepDeclined;

    public static long TokenOf(ConnectRequest report) => report.MessageCase switch
    {
        ConnectRequest.MessageOneofCase.StepStarted => report.StepStarted.FencingToken,
        ConnectRequest.MessageOneofCase.StepProgress => report.StepProgress.FencingToken,
        ConnectRequest.MessageOneofCase.StepCheckpoint => report.StepCheckpoint.FencingToken,
        ConnectRequest.MessageOneofCase.StepLog => report.StepLog.FencingToken,
        ConnectRequest.MessageOneofCase.StepCompleted => report.StepCompleted.FencingToken,
        ConnectRequest.MessageOneofCase.StepFailed => report.StepFailed.FencingToken,
        ConnectRequest.MessageOneofCase.StepDeclined => report.StepDeclined.FencingToken,
        _ => 0,
    };

    /// <summary>Log bytes of one attempt waiting to be written, and its lines dropped since the last marker.</summary>
    private record struct LogBacklog(long Bytes, long Dropped);
}
