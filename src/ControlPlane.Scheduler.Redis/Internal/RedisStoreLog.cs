using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Redis.Internal;

internal static partial class RedisStoreLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Loaded {Count} Lua scripts for namespace {Namespace} into {Servers} Redis servers")]
    public static partial void ScriptsLoaded(ILogger logger, int count, string @namespace, int servers);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Redis lost the scripts (NOSCRIPT, e.g. after a restart); reloading them")]
    public static partial void ScriptsReloading(ILogger logger);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Reloading the Lua scripts after a reconnect failed; the next call that finds them missing loads them")]
    public static partial void ScriptsReloadFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Redis call failed ({Error}); retry {Attempt}")]
    public static partial void Retrying(ILogger logger, string error, int attempt);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "Ignored a malformed store signal: {Error}")]
    public static partial void BadSignal(ILogger logger, string error);

    [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "Stored data under {Prefix} is format {Format}")]
    public static partial void FormatFound(ILogger logger, string prefix, int format);

    [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "Migrated the stored data under {Prefix} from format {From} to {To}: {Steps}")]
    public static partial void FormatMigrated(ILogger logger, string prefix, int from, int to, string steps);

    [LoggerMessage(EventId = 8, Level = LogLevel.Debug, Message = "Reading Redis's clock failed ({Error}); carrying the last reading forward")]
    public static partial void ClockResyncFailed(ILogger logger, string error);
}
