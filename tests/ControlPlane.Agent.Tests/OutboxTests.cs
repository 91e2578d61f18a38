using ControlPlane.Agent.Internal;
using ControlPlane.V1;
using Xunit;

namespace ControlPlane.Agent.Tests;

public sealed class OutboxTests
{
    [Fact]
    public void Acknowledge_ArrivesBeforeTheWriteIsCommitted_ResultIsNotKept()
    {
        // The scheduler stored the result and acknowledged it while the writer was still between its write and Commit.
        var outbox = new Outbox(100);
        outbox.Enqueue(Completed(5));
        var (_, covered) = outbox.Peek()!.Value;

        outbox.Acknowledge(5);
        outbox.Commit(covered, keepResults: true);

        Assert.Equal(0, outbox.Count);
        Assert.Equal(0, outbox.ResendUnacknowledged());
    }

    [Fact]
    public void Enqueue_ResultWhileStartIsUnsent_SendsOnlyTheResult()
    {
        var outbox = new Outbox(100);
        outbox.Enqueue(Started(1));
        outbox.Enqueue(Started(2));

        outbox.Enqueue(Completed(1));

        Assert.Equal([Started(2), Completed(1)], Drain(outbox));
    }

    [Fact]
    public void Enqueue_FailureWhileStartIsUnsent_SendsOnlyTheFailure()
    {
        var outbox = new Outbox(100);
        outbox.Enqueue(Started(3));

        outbox.Enqueue(new ConnectRequest { StepFailed = new StepFailed { FencingToken = 3, Error = "boom" } });

        Assert.Equal(ConnectRequest.MessageOneofCase.StepFailed, Assert.Single(Drain(outbox)).MessageCase);
    }

    [Fact]
    public void Enqueue_ResultAfterProgress_KeepsTheStartBeforeTheProgress()
    {
        var outbox = new Outbox(100);
        outbox.Enqueue(Started(4));
        outbox.Enqueue(new ConnectRequest { StepProgress = new StepProgress { FencingToken = 4, Percent = 50 } });

        outbox.Enqueue(Completed(4));

        Assert.Equal(
            [ConnectRequest.MessageOneofCase.StepStarted, ConnectRequest.MessageOneofCase.StepProgress, ConnectRequest.MessageOneofCase.StepCompleted],
            Drain(outbox).Select(m => m.MessageCase));
    }

    [Fact]
    public void Enqueue_ResultAfterStartWasSent_SendsTheResult()
    {
        var outbox = new Outbox(100);
        outbox.Enqueue(Started(5));
        Assert.Equal([Started(5)], Drain(outbox));

        outbox.Enqueue(Completed(5));

        Assert.Equal([Completed(5)], Drain(outbox));
    }

    [Fact]
    public void Peek_SeveralReportsQueued_OneBatchInQueueOrderWithLogLinesMerged()
    {
        var outbox = new Outbox(100);
        outbox.Enqueue(Started(1));
        outbox.Enqueue(Log(1, "a"));
        outbox.Enqueue(Log(1, "b"));
        outbox.Enqueue(Started(2));
        outbox.Enqueue(Completed(1));

        var (message, covered) = outbox.Peek(maxReports: 256)!.Value;

        Assert.Equal(5, covered.Length);
        Assert.Equal(
            [ConnectRequest.MessageOneofCase.StepStarted, ConnectRequest.MessageOneofCase.StepLog, ConnectRequest.MessageOneofCase.StepStarted, ConnectRequest.MessageOneofCase.StepCompleted],
            message.ReportBatch.Reports.Select(r => r.MessageCase));
        Assert.Equal(["a", "b"], message.ReportBatch.Reports[1].StepLog.Lines);
        outbox.Commit(covered);
        Assert.Null(outbox.Peek(maxReports: 256));
    }

    [Fact]
    public void Peek_OneReportQueued_SentWithoutBatch()
    {
        var outbox = new Outbox(100);
        outbox.Enqueue(Completed(3));

        Assert.Equal(Completed(3), outbox.Peek(maxReports: 256)!.Value.Message);
    }

    [Fact]
    public void Peek_MoreThanMaxReports_BatchStopsAtTheLimitAndTheRestFollows()
    {
        var outbox = new Outbox(100);
        for (var token = 1; token <= 5; token++)
        {
            outbox.Enqueue(Completed(token));
        }

        Assert.Equal([[1L, 2L, 3L], [4L, 5L]], Drain(outbox, maxReports: 3).Select(m => m.ReportBatch.Reports.Select(r => r.StepCompleted.FencingToken).ToArray()));
    }

    [Fact]
    public void Peek_ReportsOverTheByteBound_BatchEndsBeforeTheOneThatWouldPassItButHoldsAtLeastOne()
    {
        var outbox = new Outbox(100);
        var big = new ConnectRequest { StepCheckpoint = new StepCheckpoint { FencingToken = 1, Data = Google.Protobuf.ByteString.CopyFrom(new byte[2000]) } };
        outbox.Enqueue(big);
        outbox.Enqueue(Completed(2));
        outbox.Enqueue(Completed(3));

        var sent = Drain(outbox, maxReports: 256, maxBytes: 1000);

        Assert.Equal(2, sent.Count);
        Assert.Equal(big, sent[0]);
        Assert.Equal([Completed(2), Completed(3)], sent[1].ReportBatch.Reports);
    }

    [Fact]
    public void Enqueue_ProgressAndCheckpointsWhileUnsent_OnlyTheLatestOfEachPerAttemptWaits()
    {
        var outbox = new Outbox(100);
        for (var i = 1; i <= 1000; i++)
        {
            outbox.Enqueue(new ConnectRequest { StepProgress = new StepProgress { FencingToken = 1, Percent = i / 10.0 } });
            outbox.Enqueue(new ConnectRequest { StepCheckpoint = new StepCheckpoint { FencingToken = 1, Data = Google.Protobuf.ByteString.CopyFromUtf8($"ck{i}") } });
            outbox.Enqueue(new ConnectRequest { StepProgress = new StepProgress { FencingToken = 2, Percent = i / 10.0 } });
        }

        var sent = Drain(outbox);

        Assert.Equal(3, sent.Count);
        Assert.Equal(100, sent.Single(m => m.StepProgress?.FencingToken == 1).StepProgress.Percent);
        Assert.Equal("ck1000", sent.Single(m => m.StepCheckpoint is not null).StepCheckpoint.Data.ToStringUtf8());
        Assert.Equal(100, sent.Single(m => m.StepProgress?.FencingToken == 2).StepProgress.Percent);
    }

    [Fact]
    public void Enqueue_LogsBeyondTheAttemptsBytes_DroppedAndCountedInALineBeforeTheResult()
    {
        var outbox = new Outbox(1_000_000);
        var line = new string('x', 1000);
        for (var i = 0; i < 5000; i++)
        {
            outbox.Enqueue(Log(1, line));
        }

        outbox.Enqueue(Completed(1));
        var sent = Drain(outbox, maxReports: 1);

        var lines = sent.Where(m => m.StepLog is not null).SelectMany(m => m.StepLog.Lines).ToList();
        var kept = lines.Count(l => l == line);
        Assert.True(kept * line.Length <= Outbox.MaxLogBytesPerAttempt, $"{kept} lines of {line.Length} bytes were kept");
        Assert.Equal(Outbox.MaxLogBytesPerAttempt / line.Length, kept);
        Assert.Equal($"[controlplane] {5000 - kept} log lines dropped", lines[^1][..$"[controlplane] {5000 - kept} log lines dropped".Length]);
        Assert.Equal(Completed(1), sent[^1]);
        Assert.Equal(5000 - kept, outbox.Dropped);
    }

    [Fact]
    public void Enqueue_LogsResumeAfterDrops_MarkerComesFirstAndLaterLinesAreKept()
    {
        var outbox = new Outbox(100);
        for (var i = 0; i < 150; i++)
        {
            outbox.Enqueue(Log(1, $"early {i}"));
        }

        var first = Drain(outbox);
        outbox.Enqueue(Log(1, "later"));
        var second = Drain(outbox);

        Assert.Equal(100, first.Sum(m => m.StepLog.Lines.Count));
        Assert.StartsWith("[controlplane] 50 log lines dropped", second.Single().StepLog.Lines[0], StringComparison.Ordinal);
        Assert.Equal("later", second.Single().StepLog.Lines[1]);
    }

    [Fact]
    public void Commit_KeepingResults_ResultWaitsForItsAcknowledgementAndIsResentFirst()
    {
        var outbox = new Outbox(100);
        outbox.Enqueue(Completed(1));
        outbox.Enqueue(Completed(2));
        var written = outbox.Peek(maxReports: 256)!.Value;
        outbox.Commit(written.Covered, keepResults: true);
        outbox.Enqueue(Started(3));

        Assert.True(outbox.Acknowledge(1));
        Assert.False(outbox.Acknowledge(1));
        Assert.Equal(2, outbox.Count);
        Assert.Equal(1, outbox.ResendUnacknowledged());
        Assert.Equal([Completed(2), Started(3)], Drain(outbox));
    }

    [Fact]
    public void RemoveAttempt_UnacknowledgedResult_NotResent()
    {
        var outbox = new Outbox(100);
        outbox.Enqueue(Completed(1));
        outbox.Commit(outbox.Peek()!.Value.Covered, keepResults: true);

        outbox.RemoveAttempt(1);

        Assert.Equal(0, outbox.ResendUnacknowledged());
        Assert.Equal(0, outbox.Count);
    }

    private static ConnectRequest Started(long token) => new() { StepStarted = new StepStarted { FencingToken = token } };

    private static ConnectRequest Completed(long token) => new() { StepCompleted = new StepCompleted { FencingToken = token } };

    private static ConnectRequest Log(long token, string line) => new() { StepLog = new StepLog { FencingToken = token, Lines = { line } } };

    private static List<ConnectRequest> Drain(Outbox outbox, int maxReports = 1, int maxBytes = int.MaxValue)
    {
        var sent = new List<ConnectRequest>();
        while (outbox.Peek(maxReports, maxBytes) is { } next)
        {
            sent.Add(next.Message);
            outbox.Commit(next.Covered);
        }

        return sent;
    }
}
