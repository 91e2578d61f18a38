using ControlPlane.Scheduler.Internal;
using ControlPlane.Scheduler.Redis.Internal;
using ControlPlane.V1;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Trace;
using StackExchange.Redis;

namespace ControlPlane.Scheduler.Redis;

/// <summary>
/// The Redis stores of every namespace a scheduler serves, over one connection and one clock (Redis's <c>TIME</c>):
/// each namespace keeps its keys under <c>cp:{ns}:</c> (its own cluster slot), and the set
/// <c>cp:{_namespaces}:all</c> lists the namespaces any replica opened, so every replica reaps every namespace.
/// </summary>
public sealed class RedisNamespaceStores : INamespaceStores, IStoreTracing
{
    /// <summary>The set of opened namespaces. Namespace names start with a letter or digit, so no namespace's keys meet it.</summary>
    public const string RegistryKey = "cp:{_namespaces}:all";

    private static readonly TimeSpan ClockResyncInterval = TimeSpan.FromSeconds(10);

    private readonly ConnectionMultiplexer _connection;
    private readonly RedisTimeProvider? _clock;
    private readonly TimeProvider _time;
    private readonly RunStoreOptions _options;
    private readonly ILogger? _logger;
    private readonly Dictionary<string, Task<RedisRunStore>> _stores = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private bool _disposed;

    private RedisNamespaceStores(ConnectionMultiplexer connection, RedisTimeProvider? clock, TimeProvider time, RunStoreOptions options, ILogger? logger)
    {
        _connection = connection;
        _clock = clock;
        _time = time;
        _options = options;
        _logger = logger;
    }

    /// <summary>
    /// Connects to Redis (<paramref name="configuration"/> as StackExchange.Redis reads it, e.g. "127.0.0.1:6379") and
    /// starts the shared clock on Redis's <c>TIME</c>. This is how the daemons open their stores.
    /// </summary>
    public static async Task<RedisNamespaceStores> ConnectAsync(string configuration, RunStoreOptions options, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(configuration);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var connection = await ConnectionMultiplexer.ConnectAsync(RedisRunStore.CreateConfiguration(configuration)).ConfigureAwait(false);
        var clock = new RedisTimeProvider(connection.GetDatabase(), TimeProvider.System, ClockResyncInterval, logger);
        try
        {
            await clock.StartAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            await clock.DisposeAsync().ConfigureAwait(false);
            connection.Dispose();
            if (ex is RedisConnectionException or RedisTimeoutException)
            {
                throw Unreachable(ex);
            }

            throw;
        }

        return new RedisNamespaceStores(connection, clock, clock, options, logger);
    }

    /// <summary>Stores over an existing connection, on <paramref name="timeProvider"/>; the caller disposes the connection.</summary>
    public static RedisNamespaceStores Over(ConnectionMultiplexer connection, RunStoreOptions options, TimeProvider timeProvider, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        options.Validate();
        return new RedisNamespaceStores(connection, null, timeProvider, options, logger) { OwnsConnection = false };
    }

    private bool OwnsConnection { get; init; } = true;

    /// <summary>Every command on the connection becomes a span, a child of the span current when it was sent.</summary>
    void IStoreTracing.AddTo(TracerProviderBuilder tracing) => tracing.AddRedisInstrumentation(_connection);

    /// <summary>
    /// The store of <paramref name="ns"/>: scripts loaded, the stored format checked (migrated when
    /// <see cref="RunStoreOptions.MigrateFormat"/> is set) and the namespace added to <see cref="RegistryKey"/>.
    /// A failed open is forgotten, so the next call tries again.
    /// </summary>
    public async Task<IRunStore> OpenAsync(string ns, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(ns);
        Task<RedisRunStore> opening;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_stores.TryGetValue(ns, out opening!) || opening.IsFaulted || opening.IsCanceled)
            {
                opening = _stores[ns] = OpenCoreAsync(ns);
            }
        }

        return await opening.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<RedisRunStore> OpenCoreAsync(string ns)
    {
        var store = new RedisRunStore(_connection, ns, _options, _time, _logger);
        try
        {
            await store.EnsureReadyAsync().ConfigureAwait(false);
            await _connection.GetDatabase().SetAddAsync(RegistryKey, ns).ConfigureAwait(false);
            return store;
        }
        catch (StoreFormatException ex)
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw new RunStoreException(RunStoreError.FailedPrecondition, ErrorReason.StoreFormatMismatch, ex.Message);
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException)
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw Unreachable(ex);
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            var members = await _connection.GetDatabase().SetMembersAsync(RegistryKey).WaitAsync(cancellationToken).ConfigureAwait(false);
            return members.Select(m => (string)m!).Order(StringComparer.Ordinal).ToArray();
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException)
        {
            throw Unreachable(ex);
        }
    }

    public async Task<bool> ExistsAsync(string ns, CancellationToken cancellationToken = default)
    {
        try
        {
            return await _connection.GetDatabase().SetContainsAsync(RegistryKey, ns).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException)
        {
            throw Unreachable(ex);
        }
    }

    public async Task RelistAsync(IReadOnlyCollection<string> names, CancellationToken cancellationToken = default)
    {
        if (names.Count == 0)
        {
            return;
        }

        try
        {
            await _connection.GetDatabase().SetAddAsync(RegistryKey, names.Select(n => (RedisValue)n).ToArray()).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException)
        {
            throw Unreachable(ex);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Task<RedisRunStore>[] stores;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            stores = [.. _stores.Values];
        }

        foreach (var opening in stores)
        {
            if (opening.IsCompletedSuccessfully)
            {
                await opening.Result.DisposeAsync().ConfigureAwait(false);
            }
        }

        if (_clock is not null)
        {
            await _clock.DisposeAsync().ConfigureAwait(false);
        }

        if (OwnsConnection)
        {
            await _connection.CloseAsync().ConfigureAwait(false);
            _connection.Dispose();
        }
    }

    private static RunStoreException Unreachable(Exception ex) =>
        new(RunStoreError.Unavailable, ErrorReason.StoreUnavailable, $"the run store (Redis) cannot be reached: {ex.Message}");
}
