namespace ControlPlane.Scheduler.Security;

/// <summary>The permission a gRPC method needs from its caller's role; <see cref="AuthorizationTable"/> maps methods and roles to these.</summary>
public enum Capability
{
    /// <summary>Get, list and watch runs, step outputs, agents and statistics.</summary>
    Read,

    /// <summary>Submit, cancel, pause, resume and retry runs.</summary>
    Submit,

    /// <summary>Approve or reject gates.</summary>
    Approve,

    /// <summary>Drain agents and change shared caps.</summary>
    Operate,

    /// <summary>Create, list and revoke tokens.</summary>
    ManageTokens,

    /// <summary>Set, list and delete secrets (SecretService); admin only.</summary>
    ManageSecrets,

    /// <summary>Open an agent stream (AgentService.Connect).</summary>
    ConnectAgent,

    /// <summary>Read the audit trail (admin only).</summary>
    ReadAudit,

    /// <summary>Ask who the call's token is and what it may call (AuthService.WhoAmI); every role.</summary>
    Identify,
}
