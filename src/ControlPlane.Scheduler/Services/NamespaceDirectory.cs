using System.Collections.Concurrent;
using ControlPlane.V1;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Services;

/// <summary>
/// The namespaces one replica serves, each a <see cref="NamespaceRuntime"/> opened the first time a call names it.
/// Every few seconds it also opens the namespaces other replicas opened (<see cref="INamespaceStores.ListAsync"/>), so
/// their leases keep being reaped when the replica that served them stops.
/// </summary>
#pragma warning disable CA1001 // CloseAsync disposes the token source once discovery has stopped.
internal sealed class NamespaceDirectory
#pragma warning restore CA1001
{
    /// <summary>Most namespaces one scheduler serves; each keeps a subscription, a pipeline and a maintenance loop.</summary>
    public const int MaxNamespaces = 256;

    /// <summary>How often the namespaces other replicas opened are looked for.</summary>
    public static readonly TimeSpan DiscoveryInterval = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, Task<NamespaceRuntime>> _open = new(StringComparer.Ordinal);
    private readonly Func<string, CancellationToken, Task<NamespaceRuntime>> _start;
    private readonly INamespaceStores _stores;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _closing = new();
    private readonly Lock _gate = new();
    private Task? _discovery;
    private NamespaceRuntime? _default;

    public NamespaceDirectory(INamespaceStores stores, Func<string, CancellationToken, Task<NamespaceRuntime>> start, ILogger logger)
    {
        _stores = stores;
        _start = start;
        _logger = logger;
    }

    /// <summary>The namespace of calls that name none (the scheduler's --namespace), after <see cref="StartAsync"/>.</summary>
    public NamespaceRuntime Default => _default ?? throw new InvalidOperationException("The namespaces have not been started.");

    /// <summary>The namespaces open now.</summary>
    public IReadOnlyList<NamespaceRuntime> Opened =>
        _open.Values.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result).OrderBy(n => n.Name, StringComparer.Ordinal).ToArray();

    /// <summary>Opens the default namespace (a failure fails the start), then starts looking for the others.</summary>
    public async Task StartAsync(string defaultNamespace, CancellationToken cancellationToken)
    {
        _default = await GetAsync(defaultNamespace, cancellationToken).ConfigureAwait(false);
        _discovery = Task.Run(() => DiscoverAsync(_closing.Token), CancellationToken.None);
    }

    /// <summary>
    /// The runtime of <paramref name="ns"/> (a valid name), opening it on first use. UNAVAILABLE while the replica shuts
    /// down, RESOURCE_EXHAUSTED past <see cref="MaxNamespaces"/>; a failed open is tried again by the next call.
    /// </summary>
    public async ValueTask<NamespaceRuntime> GetAsync(string ns, CancellationToken cancellationToken)
    {
        if (_open.TryGetValue(ns, out var known) && known.IsCompletedSuccessfully)
        {
            return known.Result;
        }

        Task<NamespaceRuntime> opening;
        lock (_gate)
        {
            if (_closing.IsCancellationRequested)
            {
                throw RpcErrors.ShuttingDown("the scheduler is shutting down; retry, on another replica if there is one");
            }

            if (!_open.TryGetValue(ns, out opening!))
            {
                if (_open.Count >= MaxNamespaces)
                {
                    throw RpcErrors.WithReason(StatusCode.ResourceExhausted, ErrorReason.NamespaceNotAllowed,
                        $"this scheduler serves at most {MaxNamespaces} namespaces and all are in use; use an existing namespace for '{ns}'",
                        ("namespace", ns));
                }

                // Opened on the directory's token, not the caller's: other calls may wait for the same namespace.
                opening = Task.Run(() => _start(ns, _closing.Token), CancellationToken.None);
                _open[ns] = opening;
            }
        }

        try
        {
            return await opening.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!opening.IsCompletedSuccessfully && opening.IsCompleted)
        {
            // Forget the failure so the next call tries again (Redis may be back by then).
            _open.TryRemove(new KeyValuePair<string, Task<NamespaceRuntime>>(ns, opening));
            SchedulerLog.NamespaceOpenFailed(_logger, ns, ex);
            throw RpcErrors.Map(ex, ("namespace", ns)) ?? new RpcException(new Status(StatusCode.Unavailable,
                $"namespace '{ns}' could not be opened: {ex.GetBaseException().Message}; retry"));
        }
    }

    private async Task DiscoverAsync(CancellationToken token)
    {
        using var timer = new PeriodicTimer(DiscoveryInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(token).ConfigureAwait(false))
            {
                try
                {
                    foreach (var ns in await _stores.ListAsync(token).ConfigureAwait(false))
                    {
                        if (!_open.ContainsKey(ns) && _open.Count < MaxNamespaces)
                        {
                            await GetAsync(ns, token).ConfigureAwait(false);
                            SchedulerLog.NamespaceDiscovered(_logger, ns);
                        }
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !token.IsCancellationRequested)
                {
                    // The store is unreachable or one namespace failed to open: the next tick tries again.
                    SchedulerLog.StoreCallFailed(_logger, "ListNamespaces", ex);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Closing.
        }
    }

    /// <summary>Stops opening namespaces and returns every one that opened, for the shutdown steps.</summary>
    public async Task<IReadOnlyList<NamespaceRuntime>> CloseAsync()
    {
        lock (_gate)
        {
            _closing.Cancel();
        }

        if (_discovery is not null)
        {
            await _discovery.ConfigureAwait(false);
        }

        foreach (var opening in _open.Values)
        {
            try
            {
                await opening.ConfigureAwait(false);
            }
#pragma warning disable CA1031 // A namespace that failed to open has nothing to stop.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }

        _closing.Dispose();
        return Opened;
    }
}
