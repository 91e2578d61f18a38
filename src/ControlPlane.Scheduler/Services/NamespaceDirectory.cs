using System.Collections.Concurrent;
using ControlPlane.V1;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Services;

/// <summary>
/// The namespaces one replica serves, each a <see cref="NamespaceRuntime"/> opened the first time a call names it.
/// Calls that make something (a run, an agent, a token, a secret, a limit) may create a namespace; the others get
/// NOT_FOUND for one that does not exist, so a mistyped name neither creates anything nor counts against the limit.
/// Every few seconds it also opens the namespaces other replicas opened (<see cref="INamespaceStores.ListAsync"/>), so
/// their leases keep being reaped when the replica that served them stops, and lists again the ones it serves.
/// </summary>
#pragma warning disable CA1001 // CloseAsync disposes the token source once discovery has stopped.
internal sealed class NamespaceDirectory
#pragma warning restore CA1001
{
    /// <summary>Most namespaces that may exist; each keeps a subscription, a pipeline and a maintenance loop on every replica.</summary>
    public const int DefaultMaxNamespaces = 256;

    /// <summary>How often the namespaces other replicas opened are looked for.</summary>
    public static readonly TimeSpan DiscoveryInterval = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, Task<NamespaceRuntime>> _open = new(StringComparer.Ordinal);
    private readonly Func<string, CancellationToken, Task<NamespaceRuntime>> _start;
    private readonly INamespaceStores _stores;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _closing = new();
    private readonly Lock _gate = new();
    private readonly int _maxNamespaces;
    private Task? _discovery;
    private NamespaceRuntime? _default;

    public NamespaceDirectory(INamespaceStores stores, Func<string, CancellationToken, Task<NamespaceRuntime>> start, ILogger logger, int maxNamespaces = DefaultMaxNamespaces)
    {
        _stores = stores;
        _start = start;
        _logger = logger;
        _maxNamespaces = maxNamespaces;
    }

    /// <summary>The namespace of calls that name none (the scheduler's --namespace), after <see cref="StartAsync"/>.</summary>
    public NamespaceRuntime Default => _default ?? throw new InvalidOperationException("The namespaces have not been started.");

    /// <summary>The namespaces open now.</summary>
    public IReadOnlyList<NamespaceRuntime> Opened =>
        _open.Values.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result).OrderBy(n => n.Name, StringComparer.Ordinal).ToArray();

    /// <summary>Opens the default namespace (a failure fails the start), then starts looking for the others.</summary>
    public async Task StartAsync(string defaultNamespace, CancellationToken cancellationToken)
    {
        _default = await GetAsync(defaultNamespace, create: true, cancellationToken).ConfigureAwait(false);
        _discovery = Task.Run(() => DiscoverAsync(_closing.Token), CancellationToken.None);
    }

    /// <summary>
    /// The runtime of <paramref name="ns"/> (a valid name), opening it on first use. NOT_FOUND for a namespace that does
    /// not exist unless <paramref name="create"/>; RESOURCE_EXHAUSTED for a new one past the limit; UNAVAILABLE while
    /// the replica shuts down. A failed open is tried again by the next call.
    /// </summary>
    public async ValueTask<NamespaceRuntime> GetAsync(string ns, bool create, CancellationToken cancellationToken)
    {
        if (_open.TryGetValue(ns, out var known))
        {
            if (known.IsCompletedSuccessfully)
            {
                return known.Result;
            }
        }
        else
        {
            await ThrowIfCannotOpenAsync(ns, create, cancellationToken).ConfigureAwait(false);
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
                if (_open.Count >= _maxNamespaces)
                {
                    throw TooMany(ns);
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

    /// <summary>NOT_FOUND for a namespace that does not exist when the call may not create one; RESOURCE_EXHAUSTED for a new one past the limit.</summary>
    private async Task ThrowIfCannotOpenAsync(string ns, bool create, CancellationToken cancellationToken)
    {
        var exists = await RpcErrors.Guard(() => _stores.ExistsAsync(ns, cancellationToken), ("namespace", ns)).ConfigureAwait(false);
        if (exists)
        {
            return;
        }

        if (!create)
        {
            throw RpcErrors.WithReason(StatusCode.NotFound, ErrorReason.NamespaceNotFound,
                $"namespace '{ns}' does not exist: no run was submitted, no agent connected and no token, secret or limit was made in it; check the name (cpctl --namespace, CP_NAMESPACE, the cp-namespace header)",
                ("namespace", ns));
        }

        var existing = await RpcErrors.Guard(() => _stores.ListAsync(cancellationToken), ("namespace", ns)).ConfigureAwait(false);
        if (existing.Count >= _maxNamespaces)
        {
            throw TooMany(ns);
        }
    }

    private RpcException TooMany(string ns) => RpcErrors.WithReason(StatusCode.ResourceExhausted, ErrorReason.NamespaceNotAllowed,
        $"namespace '{ns}' would be one more than the {_maxNamespaces} namespaces a scheduler serves; use an existing namespace",
        ("namespace", ns));

    private async Task DiscoverAsync(CancellationToken token)
    {
        using var timer = new PeriodicTimer(DiscoveryInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(token).ConfigureAwait(false))
            {
                await DiscoverOnceAsync(token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // Closing.
        }
    }

    /// <summary>Opens the namespaces other replicas opened and lists again the ones this replica serves; one failing namespace stops no other.</summary>
    internal async Task DiscoverOnceAsync(CancellationToken token)
    {
        IReadOnlyList<string> listed;
        try
        {
            listed = await _stores.ListAsync(token).ConfigureAwait(false);
        }
        catch (Exception ex) when (!token.IsCancellationRequested)
        {
            SchedulerLog.StoreCallFailed(_logger, "ListNamespaces", ex);
            return;
        }

        foreach (var ns in listed)
        {
            if (_open.ContainsKey(ns) || _open.Count >= _maxNamespaces)
            {
                continue;
            }

            try
            {
                await GetAsync(ns, create: false, token).ConfigureAwait(false);
                SchedulerLog.NamespaceDiscovered(_logger, ns);
            }
            catch (RpcException) when (!token.IsCancellationRequested)
            {
                // GetAsync logged why; the next tick tries it again.
            }
            catch (RpcException) when (token.IsCancellationRequested)
            {
                // The replica is closing (GetAsync says so with UNAVAILABLE): stop quietly, so shutdown does not fail on it.
                return;
            }
        }

        // A namespace this replica serves but the record lost (Redis restarted without its data) is recorded again.
        var missing = Opened.Select(n => n.Name).Except(listed, StringComparer.Ordinal).ToArray();
        if (missing.Length > 0)
        {
            try
            {
                await _stores.RelistAsync(missing, token).ConfigureAwait(false);
            }
            catch (Exception ex) when (!token.IsCancellationRequested)
            {
                SchedulerLog.StoreCallFailed(_logger, "RelistNamespaces", ex);
            }
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
