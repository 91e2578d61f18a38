namespace ControlPlane.Scheduler.Security;

/// <summary>The in-process secret store of a scheduler without Redis; secrets live as long as the process.</summary>
public sealed class EmbeddedSecretStore : ISecretStore
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, SecretRecord> _secrets = new(StringComparer.Ordinal);

    public Task<(SecretRecord Stored, bool Replaced)> PutSecretAsync(SecretRecord secret, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(secret);
        lock (_gate)
        {
            var replaced = _secrets.TryGetValue(secret.Name, out var old);
            var stored = replaced ? secret with { CreatedAt = old!.CreatedAt } : secret;
            _secrets[secret.Name] = stored;
            return Task.FromResult((stored, replaced));
        }
    }

    public Task<IReadOnlyDictionary<string, SecretRecord>> GetSecretsAsync(IReadOnlyCollection<string> names, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(names);
        lock (_gate)
        {
            var found = new Dictionary<string, SecretRecord>(StringComparer.Ordinal);
            foreach (var name in names)
            {
                if (_secrets.TryGetValue(name, out var secret))
                {
                    found[name] = secret;
                }
            }

            return Task.FromResult<IReadOnlyDictionary<string, SecretRecord>>(found);
        }
    }

    public Task<IReadOnlyList<SecretRecord>> ListSecretsAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<SecretRecord>>([.. _secrets.Values]);
        }
    }

    public Task<SecretRecord?> DeleteSecretAsync(string name, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_secrets.Remove(name, out var secret) ? secret : null);
        }
    }
}
