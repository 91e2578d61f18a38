using ControlPlane.Agent.Internal;
using ControlPlane.V1;
using Xunit;

namespace ControlPlane.Agent.Tests;

public sealed class OutboxTests
{
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

    private static ConnectRequest Started(long token) => new() { StepStarted = new StepStarted { FencingToken = token } };

    private static ConnectRequest Completed(long token) => new() { StepCompleted = new StepCompleted { FencingToken = token } };

    private static List<ConnectRequest> Drain(Outbox outbox)
    {
        var sent = new List<ConnectRequest>();
        while (outbox.Peek() is { } next)
        {
            sent.Add(next.Message);
            outbox.Commit(next.Covered);
        }

        return sent;
    }
}
