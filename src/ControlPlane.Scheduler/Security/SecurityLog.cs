using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Security;

/// <summary>Log messages about authentication, with stable event ids.</summary>
internal static partial class SecurityLog
{
    [LoggerMessage(EventId = 150, Level = LogLevel.Warning, Message = "Authentication is off: no admin token was given (--admin-token-file or CP_ADMIN_TOKEN), so every caller of {Listen} may do everything; fine on loopback for development only")]
    public static partial void AuthenticationOff(ILogger logger, string listen);

    [LoggerMessage(EventId = 151, Level = LogLevel.Information, Message = "Authentication is on: every call to {Listen} but grpc.health needs a bearer token")]
    public static partial void AuthenticationOn(ILogger logger, string listen);

    [LoggerMessage(EventId = 152, Level = LogLevel.Warning, Message = "INSECURE: listening on {Listen} with {Tls} and {Authentication} (--insecure); anyone who reaches the port may submit commands that agents run")]
    public static partial void Insecure(ILogger logger, string listen, string tls, string authentication);

    [LoggerMessage(EventId = 153, Level = LogLevel.Warning, Message = "The configured admin token was revoked (token '{Name}'); it stays revoked. Put a new token in the admin token file to restore admin access")]
    public static partial void AdminTokenRevoked(ILogger logger, string name);

    [LoggerMessage(EventId = 160, Level = LogLevel.Information, Message = "Secret '{Name}' {Action} by {Caller} (queues: {Queues})")]
    public static partial void SecretSet(ILogger logger, string name, string action, string caller, string queues);

    [LoggerMessage(EventId = 161, Level = LogLevel.Information, Message = "Secret '{Name}' deleted by {Caller}")]
    public static partial void SecretDeleted(ILogger logger, string name, string caller);

    [LoggerMessage(EventId = 162, Level = LogLevel.Error, Message = "Secret '{Name}' cannot be decrypted with the configured secrets key ({Reason}); the steps that need it fail until it is set again (cpctl secret set {Name}) or the key it was stored with is configured")]
    public static partial void SecretUnreadable(ILogger logger, string name, string reason);

    [LoggerMessage(EventId = 163, Level = LogLevel.Information, Message = "No secrets key file (--secrets-key-file): secrets of the embedded store are encrypted with a key made at start and end with the process")]
    public static partial void EphemeralSecretsKey(ILogger logger);
}
