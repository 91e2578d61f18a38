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
    private readonly SchedulerRuntime _runtime;

    public AuthServiceImpl(SchedulerRuntime runtime)
    {
        _runtime = runtime;
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

        // A token of one namespace makes tokens of that namespace only; without a namespace, a token acts where its
        // creator's call does (an admin token made by a caller of every namespace, naming none, acts in every one).
        var scope = CallerScope.Of(context, _runtime);
        var ns = request.Namespace.Length > 0
            ? request.Namespace
            : role == TokenRole.Admin && !scope.Scoped && !scope.HeaderGiven ? CallerClaims.AnyNamespace : scope.CallNamespace;
        scope.ThrowIfOutside(ns, "create tokens");
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

        // The namespace opens (and comes into being) before the token is stored: a namespace that cannot open fails the
        // call with nothing written, rather than leaving a token whose secret nobody received.
        var auditIn = await _runtime.Namespaces.GetAsync(ns == CallerClaims.AnyNamespace ? scope.CallNamespace : ns, create: true, context.CancellationToken).ConfigureAwait(false);
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
        var detail = $"role={AuthorizationTable.RoleName(role)} namespace={ns}" + (agentId is null ? "" : $" agent_id={agentId}") + (token.ExpiresAt is { } expires ? $" expires={expires:u}" : "");
        await auditIn.Audit.RecordAsync(context, AuditActions.TokenCreate, name, detail).ConfigureAwait(false);
        return new CreateTokenResponse { Token = secret, Info = token.ToInfo() };
    }

    public override Task<WhoAmIResponse> WhoAmI(WhoAmIRequest request, ServerCallContext context)
    {
        var response = new WhoAmIResponse { AuthenticationEnabled = _options.AuthenticationEnabled };
        var user = CallerClaims.UserOf(context);
        if (!_options.AuthenticationEnabled || CallerClaims.RoleOf(user) is not { } role)
        {
            // Nothing checks who calls: every method is open.
            response.AllowedMethods.AddRange(AuthorizationTable.Methods.Keys.Order(StringComparer.Ordinal));
            return Task.FromResult(response);
        }

        response.TokenName = CallerClaims.TokenNameOf(user) ?? "";
        response.Role = role;
        response.Namespace = CallNamespace.TokenNamespaceOf(user) ?? _options.Namespace;
        response.AllowedMethods.AddRange(AuthorizationTable.Methods.Keys.Where(m => AuthorizationTable.Allows(role, m)).Order(StringComparer.Ordinal));
        return Task.FromResult(response);
    }

    public override async Task<ListTokensResponse> ListTokens(ListTokensRequest request, ServerCallContext context)
    {
        // A caller of one namespace sees that namespace's tokens; one of every namespace sees all, or one namespace's
        // when the call names it.
        var scope = CallerScope.Of(context, _runtime);
        var all = await _tokens.Store.ListAsync(context.CancellationToken).ConfigureAwait(false);
        var response = new ListTokensResponse();
        response.Tokens.AddRange(all.Where(t => !(scope.Scoped || scope.HeaderGiven) || t.Namespace == scope.CallNamespace).OrderBy(t => t.Namespace, StringComparer.Ordinal).ThenBy(t => t.Name, StringComparer.Ordinal).Select(t => t.ToInfo()));
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

        // Without a namespace, a caller of one namespace, or a call naming one, revokes in that namespace; a caller of
        // every namespace finds the name in whichever namespace holds it.
        var scope = CallerScope.Of(context, _runtime);
        var ns = request.Namespace.Length == 0 && (scope.Scoped || scope.HeaderGiven) ? scope.CallNamespace : request.Namespace;
        scope.ThrowIfOutside(ns.Length == 0 ? scope.CallNamespace : ns, "revoke tokens");
        var all = await _tokens.Store.ListAsync(context.CancellationToken).ConfigureAwait(false);
        if (ns.Length == 0)
        {
            var holders = all.Where(t => t.Name == request.Name).Select(t => t.Namespace).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            if (holders.Count > 1)
            {
                throw RpcErrors.InvalidArgument("namespace", $"namespaces {string.Join(", ", holders)} each hold a token named '{request.Name}'; say which with namespace");
            }

            ns = holders.Count == 1 ? holders[0] : scope.CallNamespace;
        }

        if (!all.Any(t => t.Name == request.Name && t.Namespace == ns))
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.NotFound, $"no token named '{request.Name}' in namespace '{ns}'; 'cpctl auth token ls' lists the tokens"));
        }

        // Opened before the revocation, so a namespace that cannot open fails the call before anything changes.
        var auditIn = await _runtime.Namespaces.GetAsync(ns == CallerClaims.AnyNamespace ? scope.CallNamespace : ns, create: true, context.CancellationToken).ConfigureAwait(false);
        var revoked = await _tokens.Store.RevokeAsync(ns, request.Name, _time.GetUtcNow(), context.CancellationToken).ConfigureAwait(false)
            ?? throw new RpcException(new Grpc.Core.Status(StatusCode.NotFound, $"no token named '{request.Name}' in namespace '{ns}'; 'cpctl auth token ls' lists the tokens"));
        _tokens.Invalidate();
        await auditIn.Audit.RecordAsync(context, AuditActions.TokenRevoke, request.Name, $"namespace={ns}").ConfigureAwait(false);
        return new RevokeTokenResponse { Info = revoked.ToInfo() };
    }

    /// <summary>Where a caller of AuthService may act: its token's namespace alone, or every one.</summary>
    private readonly record struct CallerScope(string? TokenName, string? TokenNamespace, string CallNamespace, bool HeaderGiven)
    {
        /// <summary>Whether the caller's token belongs to one namespace (not "*", and authentication is on).</summary>
        public bool Scoped => TokenNamespace is not null and not CallerClaims.AnyNamespace;

        public static CallerScope Of(ServerCallContext context, SchedulerRuntime runtime)
        {
            var user = CallerClaims.UserOf(context);
            return new CallerScope(
                CallerClaims.TokenNameOf(user),
                Security.CallNamespace.TokenNamespaceOf(user),
                runtime.NamespaceOf(context),
                context.RequestHeaders.GetValue(Security.CallNamespace.Header) is not null);
        }

        /// <summary>PERMISSION_DENIED when a caller of one namespace names another (or every one).</summary>
        public void ThrowIfOutside(string ns, string what)
        {
            if (Scoped && ns != TokenNamespace)
            {
                throw RpcErrors.WithReason(StatusCode.PermissionDenied, ErrorReason.NamespaceNotAllowed,
                    $"the token '{TokenName}' belongs to namespace '{TokenNamespace}' and may {what} of that namespace only, not of '{Shorten(ns)}'; use a token of every namespace (admin, namespace \"*\") for other namespaces",
                    ("namespace", TokenNamespace), ("requested", ns));
            }
        }
    }

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..80] + "...";

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();
}
