namespace ControlPlane.Scheduler.Security;

/// <summary>
/// One stored secret: its value sealed by <see cref="SecretCipher"/> (nonce, tag and ciphertext; never the plaintext),
/// the queues that may use it (empty: every queue) and its dates.
/// </summary>
public sealed record SecretRecord(string Name, ReadOnlyMemory<byte> Sealed, IReadOnlyList<string> Queues, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    /// <summary>Whether a step on <paramref name="queue"/> may use the secret.</summary>
    public bool Allows(string queue) => Queues.Count == 0 || Queues.Contains(queue, StringComparer.Ordinal);
}

/// <summary>
/// Where the secrets of one namespace live: in-process for the embedded store, under <c>cp:{ns}:</c> in
/// Redis. A store holds sealed values only and never needs the key; every method is atomic on its own.
/// </summary>
public interface ISecretStore
{
    /// <summary>
    /// Stores <paramref name="secret"/>, replacing one of the same name but keeping its creation date. Returns the
    /// stored record and whether one was replaced.
    /// </summary>
    Task<(SecretRecord Stored, bool Replaced)> PutSecretAsync(SecretRecord secret, CancellationToken cancellationToken);

    /// <summary>The secrets named in <paramref name="names"/> that exist, by name.</summary>
    Task<IReadOnlyDictionary<string, SecretRecord>> GetSecretsAsync(IReadOnlyCollection<string> names, CancellationToken cancellationToken);

    /// <summary>Every secret.</summary>
    Task<IReadOnlyList<SecretRecord>> ListSecretsAsync(CancellationToken cancellationToken);

    /// <summary>Deletes the secret; returns it, or null when there was none.</summary>
    Task<SecretRecord?> DeleteSecretAsync(string name, CancellationToken cancellationToken);
}
