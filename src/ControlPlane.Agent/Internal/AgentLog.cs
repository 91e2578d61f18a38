using ControlPlane.V1;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Agent.Internal;

/// <summary>Log messages of the agent's session, attempt table and runner, with stable event ids; all go to the AgentWorker category.</summary>
internal static partial class AgentLog
{
    [LoggerMessage(EventId = 101, Level = LogLevel.Debug, Message = "Connecting to {Address} as agent {AgentId}")]
    public static partial void Connecting(ILogger logger, string address, string agentId);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "Connected to {Address} (scheduler {SchedulerId}), heartbeat every {Interval}, re-announced {Attempts} attempts, sending {Resent} unacknowledged results again")]
    public static partial void Connected(ILogger logger, string address, string schedulerId, TimeSpan interval, int attempts, int resent);

    [LoggerMessage(EventId = 103, Level = LogLevel.Warning, Message = "Disconnected: {Reason}; {Buffered} reports buffered until reconnect")]
    public static partial void Disconnected(ILogger logger, string reason, int buffered);

    [LoggerMessage(EventId = 104, Level = LogLevel.Warning, Message = "Connect attempt {Attempt} failed ({Error}); retrying in {Delay}")]
    public static partial void Reconnecting(ILogger logger, int attempt, TimeSpan delay, string error);

    [LoggerMessage(EventId = 105, Level = LogLevel.Information, Message = "Assigned {RunId}/{StepId} attempt {Attempt} (token {Token}, framework {Framework})")]
    public static partial void Assigned(ILogger logger, string runId, string stepId, int attempt, long token, string framework);

    [LoggerMessage(EventId = 106, Level = LogLevel.Warning, Message = "Refused {RunId}/{StepId} attempt {Attempt}: {Reason}")]
    public static partial void Refused(ILogger logger, string runId, string stepId, int attempt, string reason);

    [LoggerMessage(EventId = 107, Level = LogLevel.Information, Message = "{RunId}/{StepId} attempt {Attempt} {Outcome}")]
    public static partial void Finished(ILogger logger, string runId, string stepId, int attempt, string outcome);

    [LoggerMessage(EventId = 108, Level = LogLevel.Information, Message = "Stopping {RunId}/{StepId} attempt {Attempt}: {Reason}")]
    public static partial void StoppingAttempt(ILogger logger, string runId, string stepId, int attempt, string reason);

    [LoggerMessage(EventId = 109, Level = LogLevel.Warning, Message = "No longer own {RunId}/{StepId} attempt {Attempt}: {Reason}")]
    public static partial void Revoked(ILogger logger, string runId, string stepId, int attempt, string reason);

    [LoggerMessage(EventId = 110, Level = LogLevel.Warning, Message = "The scheduler rejected a report for token {Token}: {Reason}")]
    public static partial void Rejected(ILogger logger, long token, string reason);

    [LoggerMessage(EventId = 111, Level = LogLevel.Information, Message = "Draining ({Reason}); waiting for {Running} running attempts")]
    public static partial void Draining(ILogger logger, string reason, int running);

    [LoggerMessage(EventId = 112, Level = LogLevel.Warning, Message = "Shutdown deadline passed with {Buffered} reports undelivered")]
    public static partial void GaveUpFlushing(ILogger logger, int buffered);

    [LoggerMessage(EventId = 114, Level = LogLevel.Trace, Message = "Received {Message}")]
    public static partial void Received(ILogger logger, ConnectResponse.MessageOneofCase message);

    [LoggerMessage(EventId = 113, Level = LogLevel.Information, Message = "Agent {AgentId} stopped")]
    public static partial void Stopped(ILogger logger, string agentId);

    [LoggerMessage(EventId = 115, Level = LogLevel.Warning, Message = "Metrics are served at http://{Listen}/metrics on a non-loopback address, without authentication or TLS: anyone who reaches it can read them")]
    public static partial void MetricsExposed(ILogger logger, string listen);
}
