using System.Globalization;
using System.Reflection;
using ControlPlane.Scheduler.Security;
using ControlPlane.V1;
using StackExchange.Redis;

namespace ControlPlane.Scheduler.Redis;

/// <summary>
/// Bearer tokens in Redis, shared by every replica. Keys live under their own hash tag, <c>cp:{_auth}:</c> (no
/// namespace can be named "_auth": names start with a letter or digit): a call is authenticated before its namespace
/// is known (the namespace is the token's), so the lookup by hash cannot sit under <c>cp:{ns}:</c>, and one slot keeps
/// the name index and the tokens together for the scripts. Only SHA-256 hashes are stored.
/// </summary>
public sealed class RedisTokenStore : ITokenStore
{
    /// <summary>The key prefix of every token key.</summary>
    public const string Prefix = "cp:{_auth}:";

    private const string TokenPrefix = Prefix + "token:";
    private static readonly RedisKey Names = Prefix + "names";
    private static readonly string PutScript = ReadScript("token_put");
    private static readonly string RevokeScript = ReadScript("token_revoke");

    private readonly IDatabase _db;

    public RedisTokenStore(IDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        _db = database;
    }

    public async Task<bool> PutAsync(ApiToken token, bool replace, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(token);
        var args = new List<RedisValue>
        {
            NameField(token.Namespace, token.Name), token.Hash, replace ? "1" : "0", TokenPrefix,
            "name", token.Name, "role", (int)token.Role, "ns", token.Namespace, "agent", token.AgentId ?? "",
            "created", token.CreatedAt.ToUnixTimeMilliseconds(), "expires", token.ExpiresAt?.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture) ?? "",
            "revoked", token.RevokedAt?.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture) ?? "",
        };
        var result = await _db.ScriptEvaluateAsync(PutScript, [Names, TokenPrefix + token.Hash], [.. args]).ConfigureAwait(false);
        return (int)result == 1;
    }

    public async Task<ApiToken?> FindAsync(string hash, CancellationToken cancellationToken) =>
        Parse(hash, await _db.HashGetAllAsync(TokenPrefix + hash).ConfigureAwait(false));

    public async Task<IReadOnlyList<ApiToken>> ListAsync(CancellationToken cancellationToken)
    {
        var names = await _db.HashGetAllAsync(Names).ConfigureAwait(false);
        var reads = names.Select(n => (Hash: (string)n.Value!, Fields: _db.HashGetAllAsync(TokenPrefix + (string)n.Value!))).ToList();
        await Task.WhenAll(reads.Select(r => r.Fields)).ConfigureAwait(false);
        return reads.Select(r => Parse(r.Hash, r.Fields.Result)).OfType<ApiToken>().ToList();
    }

    public async Task<ApiToken?> RevokeAsync(string ns, string name, DateTimeOffset at, CancellationToken cancellationToken)
    {
        var result = await _db.ScriptEvaluateAsync(RevokeScript, [Names], [NameField(ns, name), at.ToUnixTimeMilliseconds(), TokenPrefix]).ConfigureAwait(false);
        return result.IsNull ? null : await FindAsync((string)result!, cancellationToken).ConfigureAwait(false);
    }

    private static string NameField(string ns, string name) => ns + "/" + name;

    private static ApiToken? Parse(string hash, HashEntry[] entries)
    {
        if (entries.Length == 0)
        {
            return null;
        }

        var fields = entries.ToDictionary(e => (string)e.Name!, e => (string?)e.Value ?? "", StringComparer.Ordinal);
        static DateTimeOffset? Time(string text) =>
            text.Length == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture));
        return new ApiToken(
            hash,
            fields["name"],
            (TokenRole)int.Parse(fields["role"], NumberStyles.None, CultureInfo.InvariantCulture),
            fields["ns"],
            fields["agent"].Length == 0 ? null : fields["agent"],
            Time(fields["created"])!.Value,
            Time(fields.GetValueOrDefault("expires", "")),
            Time(fields.GetValueOrDefault("revoked", "")));
    }

    private static string ReadScript(string name)
    {
        var assembly = typeof(RedisTokenStore).Assembly;
        var resource = assembly.GetManifestResourceNames().Single(n => n.EndsWith(".TokenScripts." + name + ".lua", StringComparison.Ordinal));
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
