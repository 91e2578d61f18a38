using System.Security.Claims;
using System.Security.Cryptography.X509Certificates;
using ControlPlane.V1;

namespace ControlPlane.Scheduler.Security;

/// <summary>
/// Maps a client certificate that the TLS handshake already chained to <c>--client-ca</c> to an agent credential:
/// role agent, allowed to connect as the certificate's CN or one of its DNS subject alternative names and nothing
/// else. The principal carries the same <see cref="CallerClaims"/> a bearer token's does, named
/// "certificate:&lt;CN&gt;", so authorization, the agent identity check and the audit trail treat both alike. Such an
/// agent acts in the scheduler's default namespace (<paramref name="schedulerNamespace"/>): a certificate names no namespace.
/// </summary>
internal sealed class ClientCertificateIdentity(string schedulerNamespace)
{
    /// <summary>The prefix of a certificate credential's name in claims, errors and the audit trail.</summary>
    public const string NamePrefix = "certificate:";

    /// <summary>The principal for <paramref name="certificate"/>; null when it names no usable agent id (reason in <paramref name="problem"/>).</summary>
    public ClaimsPrincipal? Create(X509Certificate2 certificate, string authenticationType, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var commonName = certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
        var ids = AgentIds(certificate, commonName);
        if (ids.Count == 0)
        {
            problem = $"the client certificate '{certificate.Subject}' names no agent id in its CN or DNS names (an agent id is [a-z0-9][a-z0-9._-]{{0,62}}); issue the agent a certificate whose CN is its agent id, or send a token";
            return null;
        }

        problem = null;
        var claims = new List<Claim>
        {
            new(CallerClaims.TokenName, NamePrefix + (string.IsNullOrEmpty(commonName) ? ids[0] : commonName)),
            new(CallerClaims.Role, AuthorizationTable.RoleName(TokenRole.Agent)),
            new(CallerClaims.Namespace, schedulerNamespace),
        };

        // One claim per name, each an exact id: a certificate never stands for a prefix of ids.
        claims.AddRange(ids.Select(id => new Claim(CallerClaims.AgentId, id)));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, authenticationType, CallerClaims.TokenName, CallerClaims.Role));
    }

    private static List<string> AgentIds(X509Certificate2 certificate, string? commonName)
    {
        var names = new List<string>();
        if (!string.IsNullOrEmpty(commonName))
        {
            names.Add(commonName);
        }

        foreach (var extension in certificate.Extensions)
        {
            if (extension is X509SubjectAlternativeNameExtension san)
            {
                names.AddRange(san.EnumerateDnsNames());
            }
        }

        // A wildcard DNS name ("*.example") is not an agent id; neither is anything outside the agent id alphabet.
        return names.Where(n => !n.Contains('*', StringComparison.Ordinal) && AgentIdPattern.IsValid(n)).Distinct(StringComparer.Ordinal).ToList();
    }
}
