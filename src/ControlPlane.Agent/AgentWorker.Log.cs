using Microsoft.Extensions.Logging;

namespace ControlPlane.Agent;

public sealed partial class AgentWorker
{
    [LoggerMessage(EventId = 101, Level = LogLevel.Debug, Message = "Connecting to {Address} as agent {AgentId}")]
    private static partial void LogConnecting(ILogger logger, string address, string agentId);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "Connected to {Address} (scheduler {SchedulerId}), heartbeat every {Interval}, re-announced {Attempts} attempts")]
    private static partial void LogConnected(ILogger logger, string address, string schedulerId, TimeSpan interval, int attempts);

    [LoggerMessage(EventId = 103, Level = LogLevel.Warning, Message = "Disconnected: {Reason}; {Buffered} reports buffered until reconnect")]
    private static partial void LogDisconnected(ILogger logger, string reason, int buffered);

    [LoggerMessage(EventId = 104, Level = LogLevel.Warning, Message = "Connect attempt {Attempt} failed ({Error}); retrying in {Delay}")]
    private static partial void LogReconnecting(ILogger logger, int attempt, TimeSpan delay, string error);

    [LoggerMessage(EventId = 105, Level = LogLevel.Information, Message = "Assigned {RunId}/{StepId} attempt {Attempt} (token {Token}, framework {Framework})")]
    private static partial void LogAssigned(ILogger logger, string runId, string stepId, int attempt, long token, string framework);

    [LoggerMessage(EventId = 106, Level = LogLevel.Warning, Message = "Refused {RunId}/{StepId} attempt {Attempt}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string runId, string stepId, int attempt, string reason);

    [LoggerMessage(EventId = 107, Level = LogLevel.Information, Message = "{RunId}/{StepId} attempt {Attempt} {Outcome}")]
    private static partial void LogFinished(ILogger logger, string runId, string stepId, int attempt, string outcome);

    [LoggerMessage(EventId = 108, Level = LogLevel.Information, Message = "Stopping {RunId}/{StepId} attempt {Attempt}: {Reason}")]
    private static partial void LogStoppingAttempt(ILogger logger, string runId, string stepId, int attempt, string reason);

    [LoggerMessage(EventId = 109, Level = LogLevel.Warning, Message = "No longer own {RunId}/{StepId} attempt {Attempt}: {Reason}")]
    private static partial void LogRevoked(ILogger logger, string runId, string stepId, int attempt, string reason);

    [LoggerMessage(EventId = 110, Level = LogLevel.Warning, Message = "The scheduler rejected a report for token {Token}: {Reason}")]
    private static partial void LogRejected(ILogger logger, long token, string reason);

    [LoggerMessage(EventId = 111, Level = LogLevel.Information, Message = "Draining ({Reason}); waiting for {Running} running attempts")]
    private static partial void LogDraining(ILogger logger, string reason, int running);

    [LoggerMessage(EventId = 112, Level = LogLevel.Warning, Message = "Shutdown deadline passed with {Buffered} reports undelivered")]
    private static partial void LogGaveUpFlushing(ILogger logger, int buffered);

    [LoggerMessage(EventId = 114, Level = LogLevel.Trace, Message = "Received {Message}")]
    private static partial void LogReceived(ILogger logger, string message);

    [LoggerMessage(EventId = 113, Level = LogLevel.Information, Message = "Agent {AgentId} stopped")]
    private static partial void LogStopped(ILogger logger, string agentId);
}
