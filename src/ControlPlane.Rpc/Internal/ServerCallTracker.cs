namespace ControlPlane.Rpc.Internal;

/// <summary>Counts handlers that are still running, so shutdown and tests can see leaks.</summary>
internal sealed class ServerCallTracker
{
    private long _active;
    private long _total;

    // Created by a waiter only; a server nobody waits on allocates nothing when it goes idle.
    private TaskCompletionSource? _idle;

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
        if (Interlocked.Decrement(ref _active) == 0 && Volatile.Read(ref _idle) is not null)
        {
            Interlocked.Exchange(ref _idle, null)?.TrySetResult();
        }
    }

    /// <summary>Completes once no handler is running.</summary>
    public async Task WaitForIdleAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            // Publish the signal before reading the count (both full fences), so a call ending in between still wakes us.
            var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var idle = Interlocked.CompareExchange(ref _idle, created, null) ?? created;
            if (ActiveCalls == 0)
            {
                return;
            }

            await idle.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
