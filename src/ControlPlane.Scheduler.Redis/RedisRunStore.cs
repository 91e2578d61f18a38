using System.Globalization;
using ControlPlane.Scheduler.Redis.Internal;
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
public sealed partial class RedisRunStore : IRunStore
{
    private static readonly LuaScripts Scripts = new();

    private readonly ConnectionMultiplexer redis;
    private readonly bool ownsConnection;
    private readonly IDatabase db;
    private readonly string prefix;
    private readonly RedisKey routeKey;
    private readonly RunStoreOptions options;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly ResiliencePipeline retry;
    private readonly string ns;
    private Task? loaded;
    private long roundTrips;

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
        redis = connection;
        this.ownsConnection = ownsConnection;
        this.ns = ns;
        this.options = options;
        time = timeProvider;
        this.logger = logger ?? NullLogger.Instance;
        db = connection.GetDatabase();
        prefix = "cp:{" + ns + "}:";
        routeKey = prefix + "ctr";
        retry = new ResiliencePipelineBuilder
        {
            // Real time, not the injected provider: a test clock must not stall reconnect back-off.
            TimeProvider = TimeProvider.System,
        }.AddRetry(new RetryStrategyOptions
        {
            // Only failures where the command never reached Redis: a state change is never applied twice.
            ShouldHandle = new PredicateBuilder().Handle<RedisConnectionException>(),
            MaxRetryAttempts = 3,
            Delay = TimeSpan.FromMilliseconds(100),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            OnRetry = args =>
            {
                RedisStoreLog.Retrying(this.logger, args.Outcome.Exception?.Message ?? "unknown", args.AttemptNumber + 1);
                return ValueTask.CompletedTask;
            },
        }).Build();
    }

    /// <summary>
    /// Connects to Redis (<paramref name="configuration"/> as StackExchange.Redis reads it, e.g. "127.0.0.1:6379"),
    /// loads the scripts and returns the store, which owns the connection. Fails when Redis cannot be reached.
    /// </summary>
    public static async Task<RedisRunStore> ConnectAsync(
        string configuration, string ns, RunStoreOptions options, TimeProvider timeProvider, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(configuration);
        var config = ConfigurationOptions.Parse(configuration);
        // Keep reconnecting in the background after a Redis restart instead of giving up.
        config.AbortOnConnectFail = false;
        config.ConnectRetry = 3;
        config.ConnectTimeout = 5000;
        config.SyncTimeout = 10000;
        var connection = await ConnectionMultiplexer.ConnectAsync(config).ConfigureAwait(false);
        // Completions and signals need no ordering between them; the ordered mode funnels every completion through one
        // queue and lock, which costs latency and CPU under load.
        connection.PreserveAsyncOrder = false;
        var store = new RedisRunStore(connection, ns, options, timeProvider, logger, ownsConnection: true);
        try
        {
            await store.EnsureLoadedAsync().ConfigureAwait(false);
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return store;
    }

    /// <summary>Requests this store has sent to Redis: a script call, a command or a pipelined batch counts once.</summary>
    public long RoundTrips => Interlocked.Read(ref roundTrips);

    /// <summary>The key prefix of this store's namespace, <c>cp:{ns}:</c>.</summary>
    public string KeyPrefix => prefix;

    public async ValueTask DisposeAsync()
    {
        if (ownsConnection)
        {
            await redis.CloseAsync().ConfigureAwait(false);
            redis.Dispose();
        }
    }

    private long NowMs => time.GetUtcNow().ToUnixTimeMilliseconds();

    private RedisKey RunKey(string runId) => prefix + "r:" + runId;

    private RedisKey EventsKey(string runId) => prefix + "e:" + runId;

    private IServer Server()
    {
        var endpoint = redis.GetEndPoints().FirstOrDefault()
            ?? throw new InvalidOperationException("the Redis configuration names no endpoint; pass e.g. \"127.0.0.1:6379\"");
        return redis.GetServer(endpoint);
    }

    private Task EnsureLoadedAsync()
    {
        var task = loaded;
        if (task is null || task.IsFaulted || task.IsCanceled)
        {
            task = loaded = LoadAsync();
        }

        return task;
    }

    private async Task LoadAsync()
    {
        await retry.ExecuteAsync(async _ => await Scripts.LoadAsync(Server()).ConfigureAwait(false)).ConfigureAwait(false);
        RedisStoreLog.ScriptsLoaded(logger, Scripts.Count, ns);
    }

    /// <summary>Runs a state-changing script: ARGV[1] the key prefix, ARGV[2] now in ms, then <paramref name="args"/>.</summary>
    private async Task<RedisResult> EvalAsync(string script, IReadOnlyList<RedisValue> args, CancellationToken cancellationToken)
    {
        var values = new RedisValue[args.Count + 2];
        values[0] = prefix;
        values[1] = NowMs;
        for (var i = 0; i < args.Count; i++)
        {
            values[i + 2] = args[i];
        }

        return await InvokeAsync(script, [routeKey], values, cancellationToken).ConfigureAwait(false);
    }

    private async Task<RedisResult> InvokeAsync(string script, RedisKey[] keys, RedisValue[] values, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        await EnsureLoadedAsync().ConfigureAwait(false);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await retry.ExecuteAsync(
                    async _ =>
                    {
                        Interlocked.Increment(ref roundTrips);
                        return await db.ScriptEvaluateAsync(Scripts.Sha(script), keys, values).ConfigureAwait(false);
                    },
                    cancellationToken).ConfigureAwait(false);
            }
            catch (RedisServerException ex) when (attempt == 0 && ex.Message.StartsWith("NOSCRIPT", StringComparison.Ordinal))
            {
                // Redis restarted (or SCRIPT FLUSH): load again and retry once; the script never ran.
                RedisStoreLog.ScriptsReloading(logger);
                await LoadAsync().ConfigureAwait(false);
            }
            catch (RedisServerException ex) when (ex.Message.StartsWith("CP:", StringComparison.Ordinal))
            {
                throw Refusal(ex.Message);
            }
        }
    }

    /// <summary>Maps a script's "CP:&lt;error&gt;:&lt;message&gt;" reply to a RunStoreException.</summary>
    private static RunStoreException Refusal(string reply)
    {
        var rest = reply[3..];
        var colon = rest.IndexOf(':', StringComparison.Ordinal);
        var code = Enum.Parse<RunStoreError>(rest[..colon]);
        return new RunStoreException(code, rest[(colon + 1)..]);
    }

    /// <summary>A read that may be retried freely: it changes nothing.</summary>
    private Task<T> ReadAsync<T>(Func<IDatabase, Task<T>> read, CancellationToken cancellationToken) =>
        retry.ExecuteAsync(
            async _ =>
            {
                Interlocked.Increment(ref roundTrips);
                return await read(db).ConfigureAwait(false);
            },
            cancellationToken).AsTask();

    /// <summary>Sends a pipelined batch of reads in one round trip.</summary>
    private void Execute(IBatch batch)
    {
        Interlocked.Increment(ref roundTrips);
        batch.Execute();
    }

    private static string Invariant(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
