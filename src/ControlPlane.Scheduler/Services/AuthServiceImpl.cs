using System.Security.Cryptography;
using System.Text.RegularExpressions;
using ControlPlane.Scheduler.Audit;
using ControlPlane.Scheduler.Security;
using ControlPlane.V1;
using Google.Rpc;
using Grpc.Core;

namespace ControlPlane.Scheduler.Services;

/// <summary>AuthService: create, list and revoke bearer tokens. The secret leaves the scheduler once, in CreateToken's response.</summary>
internal sealed partial class AuthServiceImpl : AuthService.AuthServiceBase
{
    /// <summary>Longest token lifetime.</summary>
    public static readonly TimeSpan MaxTtl = TimeSpan.FromDays(3650);

    private readonly TokenValidator _tokens;
    private readonly SchedulerOptions _options;
    private readonly TimeProvider _time;
    private readonly AuditTrail _audit;

    public AuthServiceImpl(SchedulerRuntime runtime)
    {
        _audit = runtime.Audit;
        _tokens = runtime.Tokens;
        _options = runtime.Options;
        _time = runtime.Time;
    }

    public override async Task<CreateTokenResponse> CreateToken(CreateTokenRequest request, ServerCallContext context)
    {
        var violations = new List<BadRequest.Types.FieldViolation>();
        void Bad(string field, string description) => violations.Add(new() { Field = field, Description = description });

        var role = request.Role;
        if (!AuthorizationTable.Roles.ContainsKey(role))
        {
            Bad("role", "role is required: reader, submitter, approver, operator, admin or agent");
        }

        var ns = request.Namespace.Length > 0
            ? request.Namespace
            : role == TokenRole.Admin ? CallerClaims.AnyNamespace : _options.Namespace;
        if (ns == CallerClaims.AnyNamespace)
        {
            if (violations.Count == 0 && !AuthorizationTable.MaySpanNamespaces(role))
            {
                Bad("namespace", $"namespace \"*\" (every namespace) is for admin and operator tokens; give a {AuthorizationTable.RoleName(role)} token one namespace, e.g. \"{_options.Namespace}\"");
            }
        }
        else if (!NamePattern().IsMatch(ns))
        {
            Bad("namespace", $"namespace '{Shorten(ns)}' must match [a-z0-9][a-z0-9._-]{{0,62}} (e.g. \"{_options.Namespace}\"), or be \"*\" for admin and operator tokens");
        }

        var agentId = request.AgentId.Length == 0 ? null : request.AgentId;
        if (agentId is not null)
        {
            if (role != TokenRole.Agent)
            {
                Bad("agent_id", "agent_id is for agent tokens only; leave it empty, or create the token with role agent");
            }
            else if (!AgentIdPattern.IsValid(agentId))
            {
                Bad("agent_id", $"agent_id '{Shorten(agentId)}' must be an agent id ([a-z0-9][a-z0-9._-]{{0,62}}), optionally ending in one \"*\" to name every id with that prefix (e.g. \"gpu-*\")");
            }
        }

        TimeSpan? ttl = null;
        if (request.Ttl is { } duration)
        {
            if (duration.Nanos is < -999_999_999 or > 999_999_999 || duration.Seconds is < 1 or > 3650L * 24 * 3600)
            {
                Bad("ttl", $"ttl must be between 1s and {MaxTtl.TotalDays:0} days; leave it unset for a token that does not expire");
            }
            else
            {
                ttl = duration.ToTimeSpan();
            }
        }

        var name = request.Name.Length > 0 ? request.Name : $"{AuthorizationTable.RoleName(role)}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
        if (!NamePattern().IsMatch(name))
        {
            Bad("name", $"name '{Shorten(name)}' must match [a-z0-9][a-z0-9._-]{{0,62}}, e.g. \"ci\" or \"agent-gpu-1\"");
        }

        if (violations.Count > 0)
        {
            throw RpcErrors.BadRequest(string.Join("; ", violations.Select(v => $"{v.Field}: {v.Description}")), violations);
        }

        var secret = TokenSecrets.Create();
        var now = _time.GetUtcNow();
        var token = new ApiToken(TokenSecrets.Hash(secret), name, role, ns, agentId, now, now + ttl, null);
        var stored = await _tokens.Store.PutAsync(token, replace: false, context.CancellationToken).ConfigureAwait(false);
        if (!stored)
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.AlreadyExists,
                $"a token named '{name}' exists in namespace '{ns}'; pick another name, or revoke it first (cpctl auth token revoke {name})"));
        }

        // The token's name and scope only: the secret is in the response and nowhere else.
        var scope = $"role={AuthorizationTable.RoleName(role)} namespace={ns}" + (agentId is null ? "" : $" agent_id={agentId}") + (token.ExpiresAt is { } expires ? $" expires={expires:u}" : "");
        await _audit.RecordAsync(context, AuditActions.TokenCreate, name, scope).ConfigureAwait(false);
        return new CreateTokenResponse { Token = secret, Info = token.ToInfo() };
    }

    public override async Task<ListTokensResponse> ListTokens(ListTokensRequest request, ServerCallContext context)
    {
        var all = await _tokens.Store.ListAsync(context.CancellationToken).ConfigureAwait(false);
        var response = new ListTokensResponse();
        response.Tokens.AddRange(all.OrderBy(t => t.Namespace, StringComparer.Ordinal).ThenBy(t => t.Name, StringComparer.Ordinal).Select(t => t.ToInfo()));
        return response;
    }

    public override async Task<RevokeTokenResponse> RevokeToken(RevokeTokenRequest request, ServerCallContext context)
    {
        if (request.Name.Length == 0)
        {
            throw RpcErrors.Required("name");
        }

        if (request.Name.Length > 63 || request.Namespace.Length > 63)
        {
            throw RpcErrors.InvalidArgument(request.Name.Length > 63 ? "name" : "namespace", "token names and namespaces are at most 63 characters");
        }

        var ns = request.Namespace;
        if (ns.Length == 0)
        {
            var holders = (await _tokens.Store.ListAsync(context.CancellationToken).ConfigureAwait(false))
                .Where(t => t.Name == request.Name).Select(t => t.Namespace).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            if (holders.Count > 1)
            {
                throw RpcErrors.InvalidArgument("namespace", $"namespaces {string.Join(", ", holders)} each hold a token named '{request.Name}'; say which with namespace");
            }

            ns = holders.Count == 1 ? holders[0] : _options.Namespace;
        }

        var revoked = await _tokens.Store.RevokeAsync(ns, request.Name, _time.GetUtcNow(), context.CancellationToken).ConfigureAwait(false)
            ?? throw new RpcException(new Grpc.Core.Status(StatusCode.NotFound, $"no token named '{request.Name}' in namespace '{ns}'; 'cpctl auth token ls' lists the tokens"));
        _tokens.Invalidate();
        await _audit.RecordAsync(context, AuditActions.TokenRevoke, request.Name, $"namespace={ns}").ConfigureAwait(false);
        return new RevokeTokenResponse { Info = revoked.ToInfo() };
    }

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..80] + "...";

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();
}
