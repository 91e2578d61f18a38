using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// Mutual TLS on the listener: with a client CA, the handshake asks for a client certificate and accepts only one that
/// chains to that CA alone (the machine's trust store plays no part). A client may send none: bearer tokens are the
/// other credential. The accepted certificate is the connection's (HttpContext.Connection.ClientCertificate), for
/// authentication to map to an identity.
/// </summary>
internal static class ClientCertificates
{
    /// <summary>Extended key usage "TLS client authentication".</summary>
    private const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";

    public static void Configure(HttpsConnectionAdapterOptions https, X509Certificate2Collection clientCa)
    {
        if (clientCa.Count == 0)
        {
            return;
        }

        https.ClientCertificateMode = ClientCertificateMode.AllowCertificate;
        https.ClientCertificateValidation = (certificate, presented, _) => Chains(certificate, presented, clientCa);
    }

    /// <summary>True when <paramref name="certificate"/> chains to one of <paramref name="roots"/> and may authenticate a client.</summary>
    internal static bool Chains(X509Certificate2 certificate, X509Chain? presented, X509Certificate2Collection roots)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);

        // A private CA publishes no revocation lists; the certificate's lifetime is the bound.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid(ClientAuthentication));

        // Intermediates the client sent along with its certificate.
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                if (!element.Certificate.RawDataMemory.Span.SequenceEqual(certificate.RawDataMemory.Span))
                {
                    chain.ChainPolicy.ExtraStore.Add(element.Certificate);
                }
            }
        }

        return chain.Build(certificate);
    }
}
