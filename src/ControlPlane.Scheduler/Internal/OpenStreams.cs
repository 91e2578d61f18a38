namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// Counts the long-lived streams (agent Connect, WatchRun) a replica is serving, so shutdown can wait until each has
/// ended with its status before the listener closes the connections under them.
/// </summary>
internal sealed class OpenStreams
{
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _count;
    private volatile bool _closing;

    /// <summary>Streams open now.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Marks one stream open until the returned handle is disposed.</summary>
    public IDisposable Enter()
    {
        Interlocked.Increment(ref _count);
        return new Handle(this);
    }

    /// <summary>Completes once no stream is open; from then on the count only matters to this task.</summary>
    public Task WhenDrainedAsync()
    {
        _closing = true;
        if (Count == 0)
        {
            _drained.TrySetResult();
        }

        return _drained.Task;
    }

    private void Leave()
    {
        if (Interlocked.Decrement(ref _count) == 0 && _closing)
        {
            _drained.TrySetResult();
        }
    }

    private sealed class Handle(OpenStreams owner) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Leave();
            }
        }
    }
}
