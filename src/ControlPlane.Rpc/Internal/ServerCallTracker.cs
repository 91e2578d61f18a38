namespace ControlPlane.Rpc.Internal;

/// <summary>Counts handlers that are still running, so shutdown and tests can see leaks.</summary>
internal sealed class ServerCallTracker
{
    private long _active;
    private long _total;
    private TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Handlers started and not yet finished.</summary>
    public long ActiveCalls => Interlocked.Read(ref _active);

    /// <summary>Handlers started since the server started.</summary>
    public long TotalCalls => Interlocked.Read(ref _total);

    public void CallStarted()
    {
        Interlocked.Increment(ref _active);
        Interlocked.Increment(ref _total);
    }

    public void CallEnded()
    {
        if (Interlocked.Decrement(ref _active) == 0)
        {
            var idle = Interlocked.Exchange(ref _idle, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            idle.TrySetResult();
        }
    }

    /// <summary>Completes once no handler is running.</summary>
    public async Task WaitForIdleAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            // Read the signal before the count, so a call ending in between still wakes us.
            var idle = Volatile.Read(ref _idle);
            if (ActiveCalls == 0)
            {
                return;
            }

            await idle.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
