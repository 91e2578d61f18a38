namespace ControlPlane.Scheduler;

/// <summary>Settings shared by every IRunStore implementation.</summary>
public sealed class RunStoreOptions
{
    /// <summary>How long an attempt is owned without a heartbeat before the reaper requeues it. Default is 30 s.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Attempts a step may lose to lease expiry, counted like failed attempts; the step's retry policy
    /// raises this bound but never lowers it, so a crashed agent does not fail a step without retries.
    /// Default is 3.
    /// </summary>
    public int LeaseExpiryAttempts { get; set; } = 3;

    /// <summary>
    /// How long a finished run is kept when its spec sets no retention; zero keeps such runs forever. Maintenance
    /// deletes a run, its events and its index entries once this long has passed since it finished. Default is 7 days.
    /// </summary>
    public TimeSpan DefaultRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// How long a disconnected agent (with no slot in use) is listed after its last contact; maintenance then removes
    /// it, so claims and ListAgents stop reading it. Default is 24 h.
    /// </summary>
    public TimeSpan AgentRetention { get; set; } = TimeSpan.FromHours(24);

    /// <summary>The retention a run gets at submit: its spec's, else <see cref="DefaultRetention"/>, in whole milliseconds rounded up as Redis stores it.</summary>
    internal TimeSpan RetentionOf(ControlPlane.V1.RunSpec spec)
    {
        var retention = spec.Retention is { } r ? r.ToTimeSpan() : DefaultRetention;
        return TimeSpan.FromMilliseconds(Math.Ceiling(retention.TotalMilliseconds));
    }

    /// <summary>Most events one ReadEvents/WatchRun read returns. Default is 256.</summary>
    public int EventReadBatch { get; set; } = 256;

    /// <summary>Largest inline output or checkpoint, in bytes. Default is 1 MiB.</summary>
    public int OutputInlineLimit { get; set; } = 1024 * 1024;

    /// <summary>Most reports one ReportAsync call applies in one atomic step (1 to 10,000). Default is 256.</summary>
    public int ReportBatch { get; set; } = 256;

    /// <summary>
    /// Entries of the run change feed (WatchRuns resumes from it) kept at least; a watcher whose cursor is older starts
    /// over from a snapshot. Default is 10,000; at most 1,000,000.
    /// </summary>
    public int RunFeedLength { get; set; } = DefaultRunFeedLength;

    /// <summary>The default <see cref="RunFeedLength"/>.</summary>
    public const int DefaultRunFeedLength = 10_000;

    /// <summary>Largest ListRuns page. Default is 1000.</summary>
    public int MaxPageSize { get; set; } = 1000;

    /// <summary>Longest idempotency key accepted. Default is 128.</summary>
    public int MaxIdempotencyKeyLength { get; set; } = 128;

    /// <summary>
    /// Redis store: when the stored data is in an older format, upgrade it in place at start. Without it such a store
    /// refuses to open and says which format it found and which it needs. Default is false.
    /// </summary>
    public bool MigrateFormat { get; set; }

    /// <summary>Longest retention a run (or the default) may ask for: 10 years.</summary>
    public static readonly TimeSpan MaxRetention = TimeSpan.FromDays(3650);

    /// <summary>Most items (reports, expired leases, released retries of each kind) one store call handles in one atomic step.</summary>
    public const int MaxBatch = 10_000;

    /// <summary>
    /// Makes a new run's id from the store's time. Default (null): a version-7 GUID in hex, ordered by time. Given one
    /// generator, the embedded and Redis stores name the same runs alike, which lets a test compare them event by event.
    /// </summary>
    public Func<DateTimeOffset, string>? RunIdGenerator { get; set; }

    /// <summary>Throws with a message naming the setting when a value is out of range.</summary>
    public void Validate()
    {
        if (LeaseDuration <= TimeSpan.Zero)
        {
            throw new ArgumentException($"LeaseDuration must be positive (got {LeaseDuration}); set it to e.g. 00:00:30.", nameof(LeaseDuration));
        }

        if (DefaultRetention < TimeSpan.Zero || DefaultRetention > MaxRetention)
        {
            throw new ArgumentException(
                $"DefaultRetention must be between 0 (keep forever) and 3650 days (got {DefaultRetention}); set it to e.g. 7.00:00:00.", nameof(DefaultRetention));
        }

        if (AgentRetention <= TimeSpan.Zero)
        {
            throw new ArgumentException($"AgentRetention must be positive (got {AgentRetention}); set it to e.g. 1.00:00:00.", nameof(AgentRetention));
        }

        Positive(LeaseExpiryAttempts, nameof(LeaseExpiryAttempts));
        Positive(EventReadBatch, nameof(EventReadBatch));
        Positive(OutputInlineLimit, nameof(OutputInlineLimit));
        Positive(ReportBatch, nameof(ReportBatch));
        if (ReportBatch > MaxBatch)
        {
            throw new ArgumentException($"ReportBatch must be at most {MaxBatch} (got {ReportBatch}); one atomic step holds the Redis server while it runs.", nameof(ReportBatch));
        }
        if (RunFeedLength is <= 0 or > 1_000_000)
        {
            throw new ArgumentException($"RunFeedLength must be between 1 and 1000000 (got {RunFeedLength}); set it to e.g. 10000.", nameof(RunFeedLength));
        }

        Positive(MaxPageSize, nameof(MaxPageSize));
        Positive(MaxIdempotencyKeyLength, nameof(MaxIdempotencyKeyLength));
    }

    private static void Positive(int value, string name)
    {
        if (value <= 0)
        {
            throw new ArgumentException($"{name} must be at least 1 (got {value}).", name);
        }
    }
}
