namespace ControlPlane.Scheduler.Services;

/// <summary>
/// An auto-reset doorbell: any number of <see cref="Set"/> calls between two waits wake the waiter once,
/// so a burst of signals costs one re-read instead of one per signal.
/// </summary>
internal sealed class WakeUp : IDisposable
{
    private readonly SemaphoreSlim _semaphore = new(0, 1);

    public void Set()
    {
        try
        {
            _semaphore.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already rung: the waiter will run once for every signal so far.
        }
        catch (ObjectDisposedException)
        {
            // The waiter is gone; nobody to wake.
        }
    }

    /// <summary>Waits for a ring or the timeout; true when rung.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) =>
        _semaphore.WaitAsync(timeout, cancellationToken);

    public Task WaitAsync(CancellationToken cancellationToken) => _semaphore.WaitAsync(cancellationToken);

    public void Dispose() => _semaphore.Dispose();
}
