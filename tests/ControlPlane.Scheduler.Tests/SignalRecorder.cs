using ControlPlane.Scheduler;

namespace ControlPlane.Scheduler.Tests;

/// <summary>Collects store signals and lets a test await one that matches, with a timeout that fails the test.</summary>
public sealed class SignalRecorder
{
    private readonly object _gate = new();
    private readonly List<StoreSignal> _seen = [];
    private readonly List<(Func<StoreSignal, bool> Match, TaskCompletionSource<StoreSignal> Done)> _waiters = [];

    public void Handle(StoreSignal signal)
    {
        lock (_gate)
        {
            _seen.Add(signal);
            foreach (var waiter in _waiters.Where(w => w.Match(signal)).ToList())
            {
                _waiters.Remove(waiter);
                waiter.Done.TrySetResult(signal);
            }
        }
    }

    public async Task<T> WaitForAsync<T>(Func<T, bool> match, TimeSpan? timeout = null)
        where T : StoreSignal
    {
        Task<StoreSignal> task;
        lock (_gate)
        {
            var hit = _seen.OfType<T>().FirstOrDefault(match);
            if (hit is not null)
            {
                return hit;
            }

            var done = new TaskCompletionSource<StoreSignal>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((s => s is T t && match(t), done));
            task = done.Task;
        }

        try
        {
            return (T)await task.WaitAsync(timeout ?? TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no {typeof(T).Name} signal matched; seen: {string.Join(", ", Seen())}");
        }
    }

    public IReadOnlyList<StoreSignal> Seen()
    {
        lock (_gate)
        {
            return [.. _seen];
        }
    }
}
