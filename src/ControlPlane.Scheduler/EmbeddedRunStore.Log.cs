using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler;

public sealed partial class EmbeddedRunStore
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Error, Message = "Refused run transition {From} -> {To} for run {RunId} ({Reason}): not in the run state table")]
    private static partial void LogRunTransitionRefused(ILogger logger, string runId, string from, string to, string reason);

    [LoggerMessage(EventId = 2, Level = LogLevel.Error, Message = "Refused step transition {From} -> {To} for {RunId}/{StepId} ({Reason}): not in the step state table")]
    private static partial void LogStepTransitionRefused(ILogger logger, string runId, string stepId, string from, string to, string reason);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Lease of {RunId}/{StepId} attempt {Attempt} on agent {AgentId} expired")]
    private static partial void LogLeaseExpired(ILogger logger, string runId, string stepId, int attempt, string agentId);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "Refused a report for {RunId}/{StepId} with stale fencing token {Token} (current {Current})")]
    private static partial void LogStaleReport(ILogger logger, string runId, string stepId, long token, long current);

    [LoggerMessage(EventId = 5, Level = LogLevel.Error, Message = "A store signal subscriber threw on {Signal}")]
    private static partial void LogSubscriberFailed(ILogger logger, string signal, Exception exception);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "Refused a report for {RunId}/{StepId} with fencing token {Token} from {Reporter}: the attempt belongs to {Holder}")]
    private static partial void LogReportNotOwner(ILogger logger, string runId, string stepId, long token, string reporter, string holder);
}
