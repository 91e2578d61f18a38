using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace ControlPlane.Scheduler.Security;

/// <summary>Making, checking and hashing bearer token secrets.</summary>
public static class TokenSecrets
{
    /// <summary>What every issued token starts with, so a leaked one is recognisable (secret scanners, logs).</summary>
    public const string Prefix = "cpt_";

    /// <summary>Shortest token accepted (an admin token given to the scheduler must be at least this long too).</summary>
    public const int MinLength = 16;

    /// <summary>Longest token accepted.</summary>
    public const int MaxLength = 512;

    /// <summary>A new token: "cpt_" and 192 random bits in base64url (32 characters).</summary>
    public static string Create() => Prefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(24));

    /// <summary>Whether <paramref name="token"/> could be a token: 16 to 512 printable ASCII characters without spaces.</summary>
    public static bool IsWellFormed(string? token) =>
        token is { Length: >= MinLength and <= MaxLength } && token.All(c => c is > ' ' and <= '~');

    /// <summary>SHA-256 of the token's text, as 64 lower-case hex digits: what the stores keep instead of the token.</summary>
    public static string Hash(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
    }
}
