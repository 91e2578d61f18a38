namespace ControlPlane.Scheduler.Security;

/// <summary>The in-process token store of a scheduler without Redis; tokens live as long as the process.</summary>
public sealed class EmbeddedTokenStore : ITokenStore
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, ApiToken> _byHash = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Namespace, string Name), string> _byName = [];

    public Task<bool> PutAsync(ApiToken token, bool replace, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(token);
        lock (_gate)
        {
            var key = (token.Namespace, token.Name);
            if (_byName.TryGetValue(key, out var oldHash))
            {
                if (!replace && _byHash[oldHash].RevokedAt is null)
                {
                    return Task.FromResult(false);
                }

                _byHash.Remove(oldHash);
            }

            _byName[key] = token.Hash;
            _byHash[token.Hash] = token;
            return Task.FromResult(true);
        }
    }

    public Task<ApiToken?> FindAsync(string hash, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_byHash.GetValueOrDefault(hash));
        }
    }

    public Task<IReadOnlyList<ApiToken>> ListAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<ApiToken>>([.. _byHash.Values]);
        }
    }

    public Task<ApiToken?> RevokeAsync(string ns, string name, DateTimeOffset at, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_byName.TryGetValue((ns, name), out var hash))
            {
                return Task.FromResult<ApiToken?>(null);
            }

            var token = _byHash[hash];
            if (token.RevokedAt is null)
            {
                token = token with { RevokedAt = at };
                _byHash[hash] = token;
            }

            return Task.FromResult<ApiToken?>(token);
        }
    }
}
