using System.Text.Encodings.Web;
using ControlPlane.V1;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ControlPlane.Scheduler.Security;

/// <summary>
/// ASP.NET Core authentication of <c>authorization: Bearer &lt;token&gt;</c>: the token's hash is looked up in the
/// token store (through <see cref="TokenValidator"/>'s short cache) and an accepted token becomes a principal with
/// <see cref="CallerClaims"/>. A refusal is answered as a gRPC UNAUTHENTICATED status saying what is wrong. A call
/// without the header, on a connection whose client certificate the handshake chained to <c>--client-ca</c>, is an
/// agent credential for the ids the certificate names (<see cref="ClientCertificateIdentity"/>); a call carrying a
/// token is judged by the token alone.
/// </summary>
internal sealed class BearerTokenHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    TokenValidator validator,
    TimeProvider time,
    ClientCertificateIdentity? certificates = null)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "cp-bearer";

    private const string BearerPrefix = "Bearer ";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (header.Length == 0 && certificates is not null && Context.Connection.ClientCertificate is { } certificate)
        {
            return certificates.Create(certificate, SchemeName, out var problem) is { } principal
                ? AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName))
                : Fail(AuthFailure.Unauthenticated(ErrorReason.TokenMissing, problem!));
        }

        if (header.Length == 0)
        {
            return Fail(AuthFailure.Unauthenticated(ErrorReason.TokenMissing,
                "no token given: send the header 'authorization: Bearer <token>' (cpctl: pass --token or set CP_TOKEN)"));
        }

        if (!header.StartsWith(BearerPrefix, StringComparison.OrdinalIgnoreCase) || !TokenSecrets.IsWellFormed(header[BearerPrefix.Length..].Trim()))
        {
            return Fail(AuthFailure.Unauthenticated(ErrorReason.TokenMalformed,
                "the authorization header is not 'Bearer <token>' with a token of 16 to 512 printable characters; pass the token exactly as 'cpctl auth token create' printed it"));
        }

        var token = await validator.FindAsync(TokenSecrets.Hash(header[BearerPrefix.Length..].Trim()), Context.RequestAborted).ConfigureAwait(false);
        if (token is null)
        {
            return Fail(AuthFailure.Unauthenticated(ErrorReason.TokenUnknown,
                "the scheduler does not know this token; check it, or create one with 'cpctl auth token create'"));
        }

        if (token.RevokedAt is not null)
        {
            return Fail(AuthFailure.Unauthenticated(ErrorReason.TokenRevoked,
                $"the token '{token.Name}' was revoked; create a new one with 'cpctl auth token create'", token.Name));
        }

        if (token.ExpiresAt is { } expires && expires <= time.GetUtcNow())
        {
            return Fail(AuthFailure.Unauthenticated(ErrorReason.TokenExpired,
                $"the token '{token.Name}' expired at {expires:u}; create a new one with 'cpctl auth token create'", token.Name));
        }

        return AuthenticateResult.Success(new AuthenticationTicket(CallerClaims.Create(token, SchemeName), SchemeName));
    }

    private AuthenticateResult Fail(AuthFailure failure)
    {
        failure.Attach(Context);
        return AuthenticateResult.Fail(failure.Message);
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        GrpcStatusResponse.WriteAsync(Response, AuthFailure.Of(Context) ?? AuthFailure.Unauthenticated(ErrorReason.TokenMissing, "authentication required"));

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        GrpcStatusResponse.WriteAsync(Response, AuthFailure.Of(Context)
            ?? AuthFailure.Denied(ErrorReason.RoleNotAllowed, "the token's role does not allow this call"));
}
