using System.Security.Cryptography;
using System.Text;

namespace ControlPlane.Scheduler.Security;

/// <summary>
/// Seals secret values with AES-256-GCM: a fresh 12-byte random nonce per write, the secret's namespace and name as
/// associated data (<see cref="AssociatedData"/>: a sealed value copied under another name or into another namespace
/// does not open), stored as nonce || tag || ciphertext.
/// </summary>
public sealed class SecretCipher : IDisposable
{
    /// <summary>Key length: AES-256.</summary>
    public const int KeyLength = 32;

    private const int NonceLength = 12;
    private const int TagLength = 16;

    private readonly AesGcm _aes;

    // One AesGcm instance is not safe for concurrent calls (on OpenSSL it reuses one cipher context): two opens at once,
    // from agents of any namespaces, could fail each other's tag check. One cipher serves every namespace, so calls queue.
    private readonly Lock _gate = new();

    public SecretCipher(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeyLength)
        {
            throw new ArgumentException($"A secrets key is {KeyLength} bytes; this one is {key.Length}.", nameof(key));
        }

        _aes = new AesGcm(key, TagLength);
    }

    /// <summary>
    /// Reads a key file: exactly 32 bytes are the key itself; anything else is read as base64 text (surrounding
    /// whitespace ignored) that must decode to 32 bytes, e.g. made with <c>openssl rand -base64 32</c>. Throws
    /// <see cref="InvalidDataException"/> saying how to make a good one.
    /// </summary>
    public static byte[] ReadKeyFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length == KeyLength)
        {
            return bytes;
        }

        byte[]? decoded = null;
        if (bytes.Length <= 1024)
        {
            try
            {
                decoded = Convert.FromBase64String(Encoding.ASCII.GetString(bytes).Trim());
            }
            catch (FormatException)
            {
                decoded = null;
            }
        }

        if (decoded is not { Length: KeyLength })
        {
            throw new InvalidDataException(
                $"SecretsKeyFile '{path}' must hold a {KeyLength}-byte key, either the {KeyLength} raw bytes or their base64 text; it holds {bytes.Length} bytes"
                + (decoded is null ? " that are not base64" : $" that decode to {decoded.Length} bytes")
                + $". Make one with: umask 077; openssl rand -base64 {KeyLength} > {path}");
        }

        return decoded;
    }

    /// <summary>What a secret's value is sealed for: its namespace and name ("team-a/db-password"; names hold no '/').</summary>
    public static string AssociatedData(string ns, string name) => ns + "/" + name;

    /// <summary>Seals <paramref name="value"/> for <paramref name="name"/> (<see cref="AssociatedData"/>).</summary>
    public byte[] Seal(string name, ReadOnlySpan<byte> value)
    {
        var sealedValue = new byte[NonceLength + TagLength + value.Length];
        var nonce = sealedValue.AsSpan(0, NonceLength);
        RandomNumberGenerator.Fill(nonce);
        lock (_gate)
        {
            _aes.Encrypt(nonce, value, sealedValue.AsSpan(NonceLength + TagLength), sealedValue.AsSpan(NonceLength, TagLength), Encoding.UTF8.GetBytes(name));
        }

        return sealedValue;
    }

    /// <summary>The value sealed for <paramref name="name"/>; throws <see cref="CryptographicException"/> for another key, name or altered bytes.</summary>
    public byte[] Open(string name, ReadOnlySpan<byte> sealedValue)
    {
        if (sealedValue.Length < NonceLength + TagLength)
        {
            throw new CryptographicException("The sealed secret is shorter than a nonce and a tag.");
        }

        var value = new byte[sealedValue.Length - NonceLength - TagLength];
        lock (_gate)
        {
            _aes.Decrypt(sealedValue[..NonceLength], sealedValue[(NonceLength + TagLength)..], sealedValue.Slice(NonceLength, TagLength), value, Encoding.UTF8.GetBytes(name));
        }

        return value;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _aes.Dispose();
        }
    }
}
