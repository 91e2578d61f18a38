using System.Diagnostics;
using ControlPlane.Client;
using Grpc.Core;

namespace ControlPlane.Soak;

/// <summary>
/// The driver's view of the scheduler: one client per replica, and calls that move to the other replica when one does
/// not answer (killed, stopped, restarting, or its store down) until a time budget runs out, as a client of a
/// load-balanced pair would.
/// </summary>
internal sealed class Api : IDisposable
{
    private static readonly TimeSpan DefaultBudget = TimeSpan.FromSeconds(120);
    private readonly ControlPlaneClient[] _clients;
    private int _preferred;
    private int _failovers;

    public Api(IEnumerable<string> addresses)
    {
        _clients = addresses.Select(a => new ControlPlaneClient(new ControlPlaneClientOptions
        {
            Address = a,
            DefaultDeadline = TimeSpan.FromSeconds(10),
            MaxRetryAttempts = 1,
            RetryBaseDelay = TimeSpan.FromMilliseconds(200),
            RetryMaxDelay = TimeSpan.FromSeconds(1),
            KeepAlivePingDelay = TimeSpan.FromSeconds(5),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
        })).ToArray();
    }

    /// <summary>Calls that failed on one replica and were tried again, on the other one.</summary>
    public int Failovers => Volatile.Read(ref _failovers);

    /// <summary>The client of the replica calls go to now.</summary>
    public ControlPlaneClient Current => _clients[Volatile.Read(ref _preferred) % _clients.Length];

    /// <summary>Moves later calls to the other replica.</summary>
    public void Switch(ControlPlaneClient failed)
    {
        var index = Array.IndexOf(_clients, failed);
        Interlocked.CompareExchange(ref _preferred, (index + 1) % _clients.Length, index);
        Interlocked.Increment(ref _failovers);
    }

    /// <summary>
    /// Runs <paramref name="call"/> on a replica; a transient failure (the replica or its store unreachable) moves to the
    /// other replica and tries again, with backoff, until <paramref name="budget"/> has passed. Other errors are thrown.
    /// </summary>
    public async Task<T> CallAsync<T>(Func<ControlPlaneClient, Task<T>> call, TimeSpan? budget = null)
    {
        var clock = Stopwatch.StartNew();
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            var client = Current;
            try
            {
                return await call(client);
            }
            catch (RpcException ex) when (IsTransient(ex) && clock.Elapsed < (budget ?? DefaultBudget))
            {
                Switch(client);
                await Task.Delay(delay);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
        }
    }

    /// <summary>Failures that say the replica or its store is unreachable for now, not that the call was wrong.</summary>
    public static bool IsTransient(RpcException ex) =>
        ex.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Cancelled or StatusCode.Aborted
            or StatusCode.Internal or StatusCode.Unknown or StatusCode.ResourceExhausted;

    public void Dispose()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }
    }
}
