using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Scheduler;

/// <summary>
/// One <see cref="EmbeddedRunStore"/> per namespace, in this process. Replicas in one process may share an instance;
/// everything ends with the process.
/// </summary>
public sealed class EmbeddedNamespaceStores : INamespaceStores
{
    private readonly RunStoreOptions _options;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggerFactory;
    private readonly Dictionary<string, EmbeddedRunStore> _stores = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private bool _disposed;

    public EmbeddedNamespaceStores(RunStoreOptions options, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
    }

    public Task<IRunStore> OpenAsync(string ns, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(ns);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_stores.TryGetValue(ns, out var store))
            {
                store = new EmbeddedRunStore(_options, _time, _loggerFactory.CreateLogger<EmbeddedRunStore>());
                _stores.Add(ns, store);
            }

            return Task.FromResult<IRunStore>(store);
        }
    }

    public Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<string>>(_stores.Keys.Order(StringComparer.Ordinal).ToArray());
        }
    }

    public Task<bool> ExistsAsync(string ns, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(_stores.ContainsKey(ns));
        }
    }

    public Task RelistAsync(IReadOnlyCollection<string> names, CancellationToken cancellationToken = default) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        EmbeddedRunStore[] stores;
        lock (_gate)
        {
            _disposed = true;
            stores = [.. _stores.Values];
            _stores.Clear();
        }

        foreach (var store in stores)
        {
            await store.DisposeAsync().ConfigureAwait(false);
        }
    }
}
