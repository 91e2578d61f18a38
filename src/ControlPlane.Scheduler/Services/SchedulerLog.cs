using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Services;

/// <summary>Log messages of the scheduler services, with stable event ids.</summary>
internal static partial class SchedulerLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Agent {AgentId} of namespace {Namespace} connected from {Peer} with {Slots} slots on queues [{Queues}]; {Revoked} re-announced attempts revoked")]
    public static partial void AgentConnected(ILogger logger, string agentId, string @namespace, string peer, int slots, IEnumerable<string> queues, int revoked);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Agent {AgentId} disconnected")]
    public static partial void AgentDisconnected(ILogger logger, string agentId);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "Agent {AgentId} stream failed")]
    public static partial void AgentStreamFailed(ILogger logger, string agentId, Exception exception);

    [LoggerMessage(EventId = 103, Level = LogLevel.Debug, Message = "Agent {AgentId} was assigned {Count} steps")]
    public static partial void Assigned(ILogger logger, string agentId, int count);

    [LoggerMessage(EventId = 104, Level = LogLevel.Warning, Message = "Claim for agent {AgentId} failed")]
    public static partial void ClaimFailed(ILogger logger, string agentId, Exception exception);

    [LoggerMessage(EventId = 105, Level = LogLevel.Information, Message = "Report with fencing token {Token} from agent {AgentId} refused: {Reason}")]
    public static partial void ReportRefused(ILogger logger, long token, string agentId, string reason);

    [LoggerMessage(EventId = 106, Level = LogLevel.Warning, Message = "Lease renewal for agent {AgentId} failed")]
    public static partial void RenewFailed(ILogger logger, string agentId, Exception exception);

    [LoggerMessage(EventId = 107, Level = LogLevel.Warning, Message = "Agent {AgentId} is not reading its stream: {Capacity} messages wait to be sent to it; closing the stream (the agent reconnects and re-announces its attempts)")]
    public static partial void AgentNotReading(ILogger logger, string agentId, int capacity);

    [LoggerMessage(EventId = 108, Level = LogLevel.Information, Message = "Agent {AgentId} ended its stream with {Count} assignments it never took; declined on its behalf, their steps are READY again")]
    public static partial void UntakenReleased(ILogger logger, string agentId, int count);

    [LoggerMessage(EventId = 110, Level = LogLevel.Warning, Message = "Committing {Count} reports failed (try {Try}); retrying")]
    public static partial void ReportBatchRetry(ILogger logger, int count, int @try, Exception exception);

    [LoggerMessage(EventId = 111, Level = LogLevel.Error, Message = "Committing {Count} reports failed for good; the agents are told their results were refused")]
    public static partial void ReportBatchFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(EventId = 112, Level = LogLevel.Warning, Message = "The run store is unreachable; {Count} reports wait for it (try {Try})")]
    public static partial void ReportBatchWaitingForStore(ILogger logger, int count, int @try, Exception exception);

    [LoggerMessage(EventId = 113, Level = LogLevel.Information, Message = "{Count} reports stored after the run store was unreachable for {Tries} tries")]
    public static partial void ReportBatchStoredAfterOutage(ILogger logger, int count, int tries);

    [LoggerMessage(EventId = 114, Level = LogLevel.Warning, Message = "Stopped waiting for the run store with {Count} reports unstored; their agents send unacknowledged results again after reconnecting")]
    public static partial void ReportBatchGivenUp(ILogger logger, int count);

    [LoggerMessage(EventId = 120, Level = LogLevel.Information, Message = "Maintenance: {Expired} leases expired, {Retries} retries released, {TimedOut} attempts timed out, {Deleted} finished runs deleted, {Pruned} agents pruned")]
    public static partial void MaintenanceDid(ILogger logger, int expired, int retries, int timedOut, int deleted, int pruned);

    [LoggerMessage(EventId = 121, Level = LogLevel.Warning, Message = "Maintenance pass failed")]
    public static partial void MaintenanceFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 122, Level = LogLevel.Warning, Message = "The run store answers again after failing since {Since:O}: leases frozen to {Until:O} moved {Shift} later ({Moved} leases)")]
    public static partial void LeasesFrozen(ILogger logger, DateTimeOffset since, DateTimeOffset until, TimeSpan shift, int moved);

    [LoggerMessage(EventId = 123, Level = LogLevel.Warning, Message = "Freezing leases after a store outage failed; the maintenance pass waits until it succeeds")]
    public static partial void LeaseFreezeFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 130, Level = LogLevel.Information, Message = "Scheduler {SchedulerId} listening on {Addresses}")]
    public static partial void Listening(ILogger logger, string schedulerId, IEnumerable<Uri> addresses);

    [LoggerMessage(EventId = 161, Level = LogLevel.Information, Message = "Dashboard, JSON API and /metrics on {Address}")]
    public static partial void HttpListening(ILogger logger, Uri address);

    [LoggerMessage(EventId = 131, Level = LogLevel.Information, Message = "Scheduler {SchedulerId} shutting down: {Step}")]
    public static partial void ShutdownStep(ILogger logger, string schedulerId, string step);

    [LoggerMessage(EventId = 132, Level = LogLevel.Information, Message = "Serving namespace {Namespace}, opened by another replica")]
    public static partial void NamespaceDiscovered(ILogger logger, string @namespace);

    [LoggerMessage(EventId = 133, Level = LogLevel.Warning, Message = "Opening namespace {Namespace} failed; the next call that names it tries again")]
    public static partial void NamespaceOpenFailed(ILogger logger, string @namespace, Exception exception);

    [LoggerMessage(EventId = 140, Level = LogLevel.Warning, Message = "Store call in {Method} failed")]
    public static partial void StoreCallFailed(ILogger logger, string method, Exception exception);

    [LoggerMessage(EventId = 160, Level = LogLevel.Warning, Message = "Refused a {Path} request of {Length} bytes: the limit is {Limit}")]
    public static partial void RequestTooLarge(ILogger logger, string path, long length, int limit);
}
