using ControlPlane.Scheduler.Internal;
using ControlPlane.Scheduler.Security;
using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;

namespace ControlPlane.Scheduler.Services;

/// <summary>SecretService: set, list and delete the namespace's secrets. No response carries a value.</summary>
internal sealed class SecretServiceImpl : SecretService.SecretServiceBase
{
    /// <summary>Largest secret value: 60 KiB, so a SetSecret request stays under the 64 KiB limit of non-submit calls.</summary>
    public const int MaxValueBytes = 60 * 1024;

    /// <summary>Most queues one secret may be limited to.</summary>
    public const int MaxQueues = 32;

    private readonly TimeProvider _time;
    private readonly SchedulerRuntime _runtime;

    public SecretServiceImpl(SchedulerRuntime runtime)
    {
        _runtime = runtime;
        _time = runtime.Time;
    }

    public override async Task<SetSecretResponse> SetSecret(SetSecretRequest request, ServerCallContext context)
    {
        var violations = new List<BadRequest.Types.FieldViolation>();
        void Bad(string field, string description) => violations.Add(new() { Field = field, Description = description });

        if (request.Name.Length == 0)
        {
            Bad("name", "name is required: [a-z0-9][a-z0-9_.-]{0,62}, e.g. \"db-password\"");
        }
        else if (!RunSpecValidator.IsValidName(request.Name))
        {
            Bad("name", $"name '{Shorten(request.Name)}' must match [a-z0-9][a-z0-9_.-]{{0,62}} (lowercase letters, digits, '_', '.', '-'), e.g. \"db-password\"");
        }

        else if (request.Name.Length > 2 && request.Name.StartsWith("cp", StringComparison.Ordinal) && request.Name[2] is '-' or '_' or '.')
        {
            Bad("name", $"name '{request.Name}' is reserved: shell steps get a secret as an environment variable (here {request.Name.ToUpperInvariant().Replace('-', '_').Replace('.', '_')}), and CP_ variables belong to the agent; pick a name that does not start with cp-, cp_ or cp.");
        }

        if (request.Value.Length == 0)
        {
            Bad("value", "value is empty; give the secret's value (cpctl reads it from stdin or --from-file)");
        }
        else if (request.Value.Length > MaxValueBytes)
        {
            Bad("value", $"value is {request.Value.Length:N0} bytes; a secret holds at most {MaxValueBytes:N0} bytes (store larger material elsewhere and keep its key or URL here)");
        }
        else if (!IsText(request.Value.Span))
        {
            Bad("value", "value must be UTF-8 text without NUL bytes (shell steps get it as an environment variable); base64-encode binary material and decode it in the step");
        }

        if (request.Queues.Count > MaxQueues)
        {
            Bad("queues", $"names {request.Queues.Count} queues; a secret may be limited to at most {MaxQueues}");
        }
        else
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < request.Queues.Count; i++)
            {
                var queue = request.Queues[i];
                if (!RunSpecValidator.IsValidName(queue))
                {
                    Bad($"queues[{i}]", $"'{Shorten(queue)}' is not a queue name: it must match [a-z0-9][a-z0-9._-]{{0,62}}");
                }
                else if (!seen.Add(queue))
                {
                    Bad($"queues[{i}]", $"queue '{queue}' is listed twice; name each queue once");
                }
            }
        }

        if (violations.Count > 0)
        {
            throw RpcErrors.BadRequest(string.Join("; ", violations.Select(v => $"{v.Field}: {v.Description}")), violations);
        }

        var ns = await _runtime.ForCallAsync(context, create: true).ConfigureAwait(false);
        var cipher = ns.Secrets.RequireCipher();
        var now = _time.GetUtcNow();
        var queues = request.Queues.Order(StringComparer.Ordinal).ToArray();
        var record = new SecretRecord(request.Name, ns.Secrets.Seal(cipher, request.Name, request.Value.Span), queues, now, now);
        var (stored, replaced) = await ns.Secrets.Store.PutSecretAsync(record, context.CancellationToken).ConfigureAwait(false);
        var caller = CallerOf(context);
        var limitedTo = queues.Length == 0 ? "every queue" : string.Join(",", queues);
        SecurityLog.SecretSet(_runtime.Logger, stored.Name, replaced ? "replaced" : "created", caller, limitedTo);
        await ns.Audit.RecordAsync(context, Audit.AuditActions.SecretSet, stored.Name, (replaced ? "replaced" : "created") + ", queues " + limitedTo).ConfigureAwait(false);
        return new SetSecretResponse { Info = ToInfo(stored), Replaced = replaced };
    }

    public override async Task<ListSecretsResponse> ListSecrets(ListSecretsRequest request, ServerCallContext context)
    {
        var ns = await _runtime.ForCallAsync(context).ConfigureAwait(false);
        var all = await ns.Secrets.Store.ListSecretsAsync(context.CancellationToken).ConfigureAwait(false);
        var response = new ListSecretsResponse();
        response.Secrets.AddRange(all.OrderBy(s => s.Name, StringComparer.Ordinal).Select(ToInfo));
        return response;
    }

    public override async Task<DeleteSecretResponse> DeleteSecret(DeleteSecretRequest request, ServerCallContext context)
    {
        if (request.Name.Length == 0)
        {
            throw RpcErrors.Required("name");
        }

        if (!RunSpecValidator.IsValidName(request.Name))
        {
            throw RpcErrors.InvalidArgument("name", $"name '{Shorten(request.Name)}' is not a secret name ([a-z0-9][a-z0-9_.-]{{0,62}}); 'cpctl secret ls' lists the secrets");
        }

        var ns = await _runtime.ForCallAsync(context).ConfigureAwait(false);
        var deleted = await ns.Secrets.Store.DeleteSecretAsync(request.Name, context.CancellationToken).ConfigureAwait(false)
            ?? throw new RpcException(new Grpc.Core.Status(StatusCode.NotFound, $"no secret named '{request.Name}' in namespace '{ns.Name}'; 'cpctl secret ls' lists the secrets"));
        var caller = CallerOf(context);
        SecurityLog.SecretDeleted(_runtime.Logger, deleted.Name, caller);
        await ns.Audit.RecordAsync(context, Audit.AuditActions.SecretRemove, deleted.Name).ConfigureAwait(false);
        return new DeleteSecretResponse { Info = ToInfo(deleted) };
    }

    private static bool IsText(ReadOnlySpan<byte> value)
    {
        if (value.IndexOf((byte)0) >= 0)
        {
            return false;
        }

        try
        {
            _ = Strict.GetCharCount(value);
            return true;
        }
        catch (System.Text.DecoderFallbackException)
        {
            return false;
        }
    }

    private static readonly System.Text.UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static SecretInfo ToInfo(SecretRecord secret)
    {
        var info = new SecretInfo
        {
            Name = secret.Name,
            CreatedAt = Timestamp.FromDateTimeOffset(secret.CreatedAt),
            UpdatedAt = Timestamp.FromDateTimeOffset(secret.UpdatedAt),
        };
        info.Queues.AddRange(secret.Queues);
        return info;
    }

    /// <summary>The caller for the log (and the audit log that reads these entries): its token name, or "an unauthenticated caller" with authentication off.</summary>
    private static string CallerOf(ServerCallContext context) =>
        CallerClaims.TokenNameOf(CallerClaims.UserOf(context)) is { } name ? $"token '{name}'" : "an unauthenticated caller";

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..80] + "...";
}
