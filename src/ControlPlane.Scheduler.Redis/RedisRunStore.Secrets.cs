using System.Globalization;
using ControlPlane.Scheduler.Security;
using StackExchange.Redis;

namespace ControlPlane.Scheduler.Redis;

/// <summary>
/// The secrets of the store's namespace: one hash per secret, <c>cp:{ns}:secret:NAME</c> (v: the sealed value, never
/// the plaintext; q: comma-separated queues; c and u: created and updated, Unix ms), and the set of names
/// <c>cp:{ns}:secrets</c>. The scheduler seals and opens values; Redis never sees the key.
/// </summary>
public sealed partial class RedisRunStore
{
    // Keeps the creation date of a secret it replaces; one write of the hash and the index.
    private const string SecretPutScript = """
        local created = redis.call('HGET', KEYS[1], 'c')
        local replaced = 1
        if not created then
          created = ARGV[4]
          replaced = 0
        end
        redis.call('HSET', KEYS[1], 'v', ARGV[2], 'q', ARGV[3], 'c', created, 'u', ARGV[4])
        redis.call('SADD', KEYS[2], ARGV[1])
        return {replaced, created}
        """;

    private const string SecretDeleteScript = """
        local fields = redis.call('HGETALL', KEYS[1])
        if #fields == 0 then
          return false
        end
        redis.call('DEL', KEYS[1])
        redis.call('SREM', KEYS[2], ARGV[1])
        return fields
        """;

    private RedisKey SecretKey(string name) => _prefix + "secret:" + name;

    private RedisKey SecretIndexKey => _prefix + "secrets";

    async Task<(SecretRecord Stored, bool Replaced)> ISecretStore.PutSecretAsync(SecretRecord secret, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(secret);
        var result = (RedisResult[])(await _db.ScriptEvaluateAsync(
            SecretPutScript,
            [SecretKey(secret.Name), SecretIndexKey],
            [secret.Name, secret.Sealed, string.Join(',', secret.Queues), secret.UpdatedAt.ToUnixTimeMilliseconds()]).ConfigureAwait(false))!;
        var created = DateTimeOffset.FromUnixTimeMilliseconds(long.Parse((string)result[1]!, NumberStyles.None, CultureInfo.InvariantCulture));
        return (secret with { CreatedAt = created }, (long)result[0] == 1);
    }

    async Task<IReadOnlyDictionary<string, SecretRecord>> ISecretStore.GetSecretsAsync(IReadOnlyCollection<string> names, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(names);
        var reads = names.Select(n => (Name: n, Fields: _db.HashGetAllAsync(SecretKey(n)))).ToList();
        await Task.WhenAll(reads.Select(r => r.Fields)).ConfigureAwait(false);
        var found = new Dictionary<string, SecretRecord>(StringComparer.Ordinal);
        foreach (var (name, fields) in reads)
        {
            if (ParseSecret(name, fields.Result) is { } secret)
            {
                found[name] = secret;
            }
        }

        return found;
    }

    async Task<IReadOnlyList<SecretRecord>> ISecretStore.ListSecretsAsync(CancellationToken cancellationToken)
    {
        var names = await _db.SetMembersAsync(SecretIndexKey).ConfigureAwait(false);
        var found = await ((ISecretStore)this).GetSecretsAsync(names.Select(n => (string)n!).ToList(), cancellationToken).ConfigureAwait(false);
        return [.. found.Values];
    }

    async Task<SecretRecord?> ISecretStore.DeleteSecretAsync(string name, CancellationToken cancellationToken)
    {
        var result = await _db.ScriptEvaluateAsync(SecretDeleteScript, [SecretKey(name), SecretIndexKey], [name]).ConfigureAwait(false);
        if (result.IsNull)
        {
            return null;
        }

        var flat = (RedisResult[])result!;
        var entries = new HashEntry[flat.Length / 2];
        for (var i = 0; i < entries.Length; i++)
        {
            entries[i] = new HashEntry((string)flat[2 * i]!, (RedisValue)flat[(2 * i) + 1]);
        }

        return ParseSecret(name, entries);
    }

    private static SecretRecord? ParseSecret(string name, HashEntry[] entries)
    {
        if (entries.Length == 0)
        {
            return null;
        }

        var fields = entries.ToDictionary(e => (string)e.Name!, e => e.Value, StringComparer.Ordinal);
        static DateTimeOffset Time(RedisValue value) => DateTimeOffset.FromUnixTimeMilliseconds((long)value);
        var queues = (string?)fields["q"] ?? "";
        return new SecretRecord(
            name,
            (byte[])fields["v"]!,
            queues.Length == 0 ? [] : queues.Split(','),
            Time(fields["c"]),
            Time(fields["u"]));
    }
}
