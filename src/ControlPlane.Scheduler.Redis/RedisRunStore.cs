using System.Globalization;
using ControlPlane.Scheduler.Redis.Internal;
using ControlPlane.Scheduler.Security;
using ControlPlane.V1;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.Retry;
using StackExchange.Redis;

namespace ControlPlane.Scheduler.Redis;

/// <summary>
/// The production <see cref="IRunStore"/>: every state change is one Lua script (Scripts/*.lua) called by
/// SHA, all keys of a namespace share the hash tag <c>cp:{ns}:</c> (one cluster slot), events live in one
/// Redis stream per run, and wake-ups go out on one pub/sub channel per namespace.
/// </summary>
public sealed partial class RedisRunStore : IRunStore, ITokenStore, Audit.IAuditStore, ISecretStore
{
    private static readonly LuaScripts Scripts = new();

    // How often each replica re-reads Redis's clock; between reads its monotonic timer carries it.
    private static readonly TimeSpan ClockResyncInterval = TimeSpan.FromSeconds(10);

    private readonly ConnectionMultiplexer _redis;
    private readonly bool _ownsConnection;
    private readonly IDatabase _db;
    private readonly string _prefix;
    private readonly RedisKey _routeKey;
    private readonly RunStoreOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    // State changes are retried only when the command never left the client; reads and script loads whenever the
    // connection failed, since running them twice changes nothing.
    private readonly ResiliencePipeline _retry;
    private readonly ResiliencePipeline _readRetry;
    private readonly string _ns;
    private RedisTokenStore? _tokens;
    private RedisAuditStore? _audit;
    private RedisTimeProvider? _ownedClock;
    private Task? _loaded;
    private long _roundTrips;

    /// <summary>
    /// A store over an existing connection (shared with other users of it). Scripts load on first use.
    /// </summary>
    /// <param name="connection">An open multiplexer; the store does not dispose it.</param>
    /// <param name="ns">The key namespace: letters, digits, '.', '_' or '-'; keys are <c>cp:{ns}:...</c>.</param>
    public RedisRunStore(ConnectionMultiplexer connection, string ns, RunStoreOptions options, TimeProvider timeProvider, ILogger? logger = null)
        : this(connection, ns, options, timeProvider, logger, ownsConnection: false)
    {
    }

    private RedisRunStore(ConnectionMultiplexer connection, string ns, RunStoreOptions options, TimeProvider timeProvider, ILogger? logger, bool ownsConnection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        if (string.IsNullOrEmpty(ns) || !ns.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
        {
            throw new ArgumentException($"namespace '{ns}' must be non-empty and use only letters, digits, '.', '_' or '-'", nameof(ns));
        }

        options.Validate();
        _redis = connection;
        _ownsConnection = ownsConnection;
        _ns = ns;
        _options = options;
        _time = timeProvider;
        _logger = logger ?? NullLogger.Instance;
        _db = connection.GetDatabase();

        // A restarted server, or one the multiplexer met later (a replica promoted, a new endpoint), lacks the scripts.
        connection.ConnectionRestored += OnConnectionRestored;
        _prefix = "cp:{" + ns + "}:";
        _routeKey = _prefix + "ctr";
        _retry = CreateRetry(ex => ex is RedisConnectionException { CommandStatus: CommandStatus.WaitingToBeSent });
        _readRetry = CreateRetry(ex => ex is RedisConnectionException);
    }

    private ResiliencePipeline CreateRetry(Func<Exception, bool> retryable) =>
        new ResiliencePipelineBuilder
        {
            // Real time, not the injected provider: a test clock must not stall reconnect back-off.
            TimeProvider = TimeProvider.System,
        }.AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle(retryable),
            MaxRetryAttempts = 3,
            Delay = TimeSpan.FromMilliseconds(100),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            OnRetry = args =>
            {
                RedisStoreLog.Retrying(_logger, args.Outcome.Exception?.Message ?? "unknown", args.AttemptNumber + 1);
                return ValueTask.CompletedTask;
            },
        }).Build();

    /// <summary>
    /// The multiplexer settings the store is built for, from a StackExchange.Redis configuration string such as
    /// "127.0.0.1:6379": reconnect in the background, and fail fast while disconnected. Pass them to
    /// <see cref="ConnectionMultiplexer.ConnectAsync(ConfigurationOptions, TextWriter)"/> when sharing a connection.
    /// </summary>
    public static ConfigurationOptions CreateConfiguration(string configuration)
    {
        ArgumentException.ThrowIfNullOrEmpty(configuration);
        var config = ConfigurationOptions.Parse(configuration);

        // Keep reconnecting in the background after a Redis restart instead of giving up.
        config.AbortOnConnectFail = false;
        config.ConnectRetry = 3;
        config.ConnectTimeout = 5000;
        config.SyncTimeout = 10000;

        // Back within a second of Redis: the default policy waits up to ConnectTimeout between tries and checks on a 1 s
        // heartbeat, so a 3 s restart kept the store unreachable for 3 s more, long enough for agents to give up leases
        // (at the soak's 8 s lease, less the stop margin). Tries every 250 ms doubling to 1 s, checked twice a second.
        config.ReconnectRetryPolicy = new ExponentialRetry(250, 1000);
        config.HeartbeatInterval = TimeSpan.FromMilliseconds(500);

        // While Redis is unreachable a call fails at once instead of waiting in the client's backlog: every caller has
        // its own retry policy (report pipeline, claim loop, client retries on UNAVAILABLE), and a backlogged state
        // change replayed after reconnecting could apply after its caller had already been told it failed.
        config.BacklogPolicy = BacklogPolicy.FailFast;
        return config;
    }

    /// <summary>
    /// Connects to Redis (<paramref name="configuration"/> as StackExchange.Redis reads it, e.g. "127.0.0.1:6379"),
    /// loads the scripts, checks the stored data's format (migrating it when <see cref="RunStoreOptions.MigrateFormat"/>
    /// is set) and returns the store, which owns the connection. Fails when Redis cannot be reached, and with
    /// <see cref="StoreFormatException"/> when the data is in a format this build does not write.
    /// </summary>
    public static async Task<RedisRunStore> ConnectAsync(
        string configuration, string ns, RunStoreOptions options, TimeProvider timeProvider, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(configuration);
        var connection = await ConnectionMultiplexer.ConnectAsync(CreateConfiguration(configuration)).ConfigureAwait(false);
        var store = new RedisRunStore(connection, ns, options, timeProvider, logger, ownsConnection: true);
        try
        {
            await store.EnsureLoadedAsync().ConfigureAwait(false);
            await store.EnsureFormatAsync().ConfigureAwait(false);
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return store;
    }

    /// <summary>
    /// Finds the stored data's format and reconciles it with this build's (see <see cref="StoreFormat"/>): stamps an
    /// empty namespace, migrates when <see cref="RunStoreOptions.MigrateFormat"/> is set, refuses otherwise.
    /// </summary>
    public async Task EnsureFormatAsync()
    {
        StoreFormat.Outcome outcome;
        try
        {
            outcome = await _readRetry.ExecuteAsync(
                async _ => await StoreFormat.EnsureAsync(_db, _prefix, _options.MigrateFormat, options: _options).ConfigureAwait(false)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException)
        {
            throw Unreachable(ex);
        }

        if (outcome.Ran.Count > 0)
        {
            RedisStoreLog.FormatMigrated(_logger, _prefix, outcome.Found, StoreFormat.Current, string.Join("; ", outcome.Ran.Select(m => m.Description)));
        }
        else
        {
            RedisStoreLog.FormatFound(_logger, _prefix, outcome.Found);
        }
    }

    /// <summary>
    /// Connects as <see cref="ConnectAsync(string, string, RunStoreOptions, TimeProvider, ILogger?)"/> does, with the store's
    /// own clock: Redis's <c>TIME</c> (<see cref="RedisTimeProvider"/>), so every replica computes leases, timeouts and
    /// backoffs from one clock whatever its own says. This is how the daemons open the store.
    /// </summary>
    public static async Task<RedisRunStore> ConnectAsync(string configuration, string ns, RunStoreOptions options, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(configuration);
        var connection = await ConnectionMultiplexer.ConnectAsync(CreateConfiguration(configuration)).ConfigureAwait(false);
        var clock = new RedisTimeProvider(connection.GetDatabase(), TimeProvider.System, ClockResyncInterval, logger);
        RedisRunStore? store = null;
        try
        {
            try
            {
                await clock.StartAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException)
            {
                throw Unreachable(ex);
            }

            store = new RedisRunStore(connection, ns, options, clock, logger, ownsConnection: true) { _ownedClock = clock };
            await store.EnsureLoadedAsync().ConfigureAwait(false);
            await store.EnsureFormatAsync().ConfigureAwait(false);
            return store;
        }
        catch
        {
            if (store is not null)
            {
                await store.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                await clock.DisposeAsync().ConfigureAwait(false);
                connection.Dispose();
            }

            throw;
        }
    }

    /// <summary>Requests this store has sent to Redis: a script call, a command or a pipelined batch counts once.</summary>
    public long RoundTrips => Interlocked.Read(ref _roundTrips);

    /// <summary>The clock the scripts compute leases, timeouts and backoffs with.</summary>
    public TimeProvider Clock => _time;

    /// <summary>The key prefix of this store's namespace, <c>cp:{ns}:</c>.</summary>
    public string KeyPrefix => _prefix;

    /// <summary>
    /// Loads the scripts and checks the stored data's format (<see cref="EnsureFormatAsync"/>): what
    /// <see cref="ConnectAsync(string, string, RunStoreOptions, ILogger?)"/> does before it returns a store, for a
    /// store made over a shared connection.
    /// </summary>
    public async Task EnsureReadyAsync()
    {
        await EnsureLoadedAsync().ConfigureAwait(false);
        await EnsureFormatAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        _redis.ConnectionRestored -= OnConnectionRestored;
        if (_ownedClock is not null)
        {
            await _ownedClock.DisposeAsync().ConfigureAwait(false);
        }

        if (_ownsConnection)
        {
            await _redis.CloseAsync().ConfigureAwait(false);
            _redis.Dispose();
        }
    }

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private RedisKey RunKey(string runId) => _prefix + "r:" + runId;

    private RedisKey EventsKey(string runId) => _prefix + "e:" + runId;

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType == ConnectionType.Interactive)
        {
            _ = ReloadQuietlyAsync();
        }
    }

    private async Task ReloadQuietlyAsync()
    {
        try
        {
            await LoadAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or RedisTimeoutException or RunStoreException)
        {
            // The next call that meets NOSCRIPT loads them again.
            RedisStoreLog.ScriptsReloadFailed(_logger, ex);
        }
    }

    private Task EnsureLoadedAsync()
    {
        var task = _loaded;
        if (task is null || task.IsFaulted || task.IsCanceled)
        {
            task = _loaded = LoadAsync();
        }

        return task;
    }

    /// <summary>
    /// Loads the scripts on every server the multiplexer knows, so any of them can run them by SHA. Servers that cannot
    /// be reached now get them when they reconnect (<see cref="OnConnectionRestored"/>); at least one must take them.
    /// </summary>
    private async Task LoadAsync()
    {
        try
        {
            await _readRetry.ExecuteAsync(async _ =>
            {
                RedisConnectionException? unreachable = null;
                var loaded = 0;
                foreach (var server in _redis.GetServers())
                {
                    try
                    {
                        await Scripts.LoadAsync(server).ConfigureAwait(false);
                        loaded++;
                    }
                    catch (RedisConnectionException ex)
                    {
                        unreachable = ex;
                    }
                }

                if (loaded == 0)
                {
                    throw unreachable ?? new RedisConnectionException(ConnectionFailureType.UnableToConnect, CommandFlags.None, "the configuration names no Redis server");
                }

                RedisStoreLog.ScriptsLoaded(_logger, Scripts.Count, _ns, loaded);

                // The scripts trim the run change feed to about this many entries (common.lua, feed_append).
                await _db.StringSetAsync(_prefix + "runfeed:max", _options.RunFeedLength).ConfigureAwait(false);
            }).ConfigureAwait(false);
        }
        catch (RedisConnectionException ex)
        {
            throw Unreachable(ex);
        }
    }

    /// <summary>Runs a state-changing script: ARGV[1] the key prefix, ARGV[2] now in ms, then <paramref name="args"/>.</summary>
    private async Task<RedisResult> EvalAsync(string script, IReadOnlyList<RedisValue> args, CancellationToken cancellationToken)
    {
        var values = new RedisValue[args.Count + 2];
        values[0] = _prefix;
        values[1] = NowMs;
        for (var i = 0; i < args.Count; i++)
        {
            values[i + 2] = args[i];
        }

        return await InvokeAsync(script, [_routeKey], values, cancellationToken).ConfigureAwait(false);
    }

    private async Task<RedisResult> InvokeAsync(string script, RedisKey[] keys, RedisValue[] values, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        await EnsureLoadedAsync().ConfigureAwait(false);

        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await _retry.ExecuteAsync(
                    async _ =>
                    {
                        Interlocked.Increment(ref _roundTrips);
                        return await _db.ScriptEvaluateAsync(Scripts.Sha(script), keys, values).ConfigureAwait(false);
                    },
                    cancellationToken).ConfigureAwait(false);
            }
            catch (RedisServerException ex) when (attempt == 0 && ex.Message.StartsWith("NOSCRIPT", StringComparison.Ordinal))
            {
                // Redis restarted (or SCRIPT FLUSH): load again and retry once; the script never ran.
                RedisStoreLog.ScriptsReloading(_logger);
                await LoadAsync().ConfigureAwait(false);
            }
            catch (RedisServerException ex) when (ex.Message.StartsWith("CP:", StringComparison.Ordinal))
            {
                throw Refusal(ex.Message);
            }
            catch (RedisServerException ex) when (ex.Message.StartsWith("OOM", StringComparison.Ordinal))
            {
                // Under noeviction Redis refuses a script at its first write, so nothing was written; callers retry.
                throw new RunStoreException(RunStoreError.Unavailable, ErrorReason.StoreUnavailable,
                    "the run store (Redis) is at its maxmemory limit and refused the change; nothing was written. " +
                    "Raise maxmemory or shorten the retention of finished runs (RunSpec.retention).")
                {
                    StoreFull = true,
                };
            }
            catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException)
            {
                throw Unreachable(ex);
            }
        }
    }

    /// <summary>Maps a script's "CP:&lt;error&gt;:&lt;reason number&gt;:&lt;message&gt;" reply to a RunStoreException.</summary>
    internal static RunStoreException Refusal(string reply)
    {
        var parts = reply.Split(':', 4);
        var code = Enum.Parse<RunStoreError>(parts[1]);
        var reason = (ErrorReason)int.Parse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture);
        return new RunStoreException(code, reason, parts[3]);
    }

    /// <summary>A read that may be retried freely: it changes nothing.</summary>
    private async Task<T> ReadAsync<T>(Func<IDatabase, Task<T>> read, CancellationToken cancellationToken)
    {
        try
        {
            return await _readRetry.ExecuteAsync(
                async _ =>
                {
                    Interlocked.Increment(ref _roundTrips);
                    return await read(_db).ConfigureAwait(false);
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException)
        {
            throw Unreachable(ex);
        }
    }

    /// <summary>Awaits a pipelined read of a batch sent with <see cref="Execute"/>, mapping an outage as <see cref="ReadAsync"/> does.</summary>
    private static async Task<T> BatchedAsync<T>(Task<T> read)
    {
        try
        {
            return await read.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException)
        {
            throw Unreachable(ex);
        }
    }

    /// <summary>Redis could not be reached (after the retries): UNAVAILABLE to gRPC callers, retryable by the report pipeline.</summary>
    private static RunStoreException Unreachable(Exception ex) =>
        new(RunStoreError.Unavailable, ErrorReason.StoreUnavailable, $"the run store (Redis) cannot be reached: {ex.Message}");

    /// <summary>Sends a pipelined batch of reads in one round trip.</summary>
    private void Execute(IBatch batch)
    {
        Interlocked.Increment(ref _roundTrips);
        batch.Execute();
    }

    private static string Invariant(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
