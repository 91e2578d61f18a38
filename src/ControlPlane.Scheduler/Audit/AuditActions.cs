namespace ControlPlane.Scheduler.Audit;

/// <summary>The audited actions' names, as AuditEntry.action and <c>cpctl audit ls --action</c> show them.</summary>
public static class AuditActions
{
    public const string RunSubmit = "run.submit";
    public const string RunCancel = "run.cancel";
    public const string RunPause = "run.pause";
    public const string RunResume = "run.resume";
    public const string RunRetry = "run.retry";
    public const string GateApprove = "gate.approve";
    public const string GateReject = "gate.reject";
    public const string AgentDrain = "agent.drain";
    public const string LimitSet = "limit.set";
    public const string TokenCreate = "token.create";
    public const string TokenRevoke = "token.revoke";

    /// <summary>A secret was created or replaced; the target is the secret's name, never its value.</summary>
    public const string SecretSet = "secret.set";

    /// <summary>A secret was removed; the target is the secret's name.</summary>
    public const string SecretRemove = "secret.remove";
}
