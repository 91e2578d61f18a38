namespace ControlPlane.Rpc.Tests;

/// <summary>Lets a test await what a server handler did: started, saw its token fire, finished.</summary>
public sealed class ServerHandlerProbe
{
    public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource Finished { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Released by the test to let a handler that ignores cancellation return.</summary>
    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int MessagesRead;

    /// <summary>Completes when <see cref="MessagesRead"/> reaches <see cref="MessagesTarget"/>.</summary>
    public TaskCompletionSource MessagesReached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int MessagesTarget { get; set; } = int.MaxValue;

    public void OnMessageRead()
    {
        if (Interlocked.Increment(ref MessagesRead) >= MessagesTarget)
        {
            MessagesReached.TrySetResult();
        }
    }

    public Exception? LastError { get; set; }

    public void Watch(CancellationToken token)
    {
        Started.TrySetResult();
        token.Register(() => Cancelled.TrySetResult());
    }
}
