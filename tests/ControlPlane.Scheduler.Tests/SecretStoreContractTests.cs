using ControlPlane.Scheduler.Security;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

/// <summary>What every <see cref="ISecretStore"/> does alike (embedded and Redis).</summary>
public abstract class SecretStoreContractTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000);

    protected abstract Task<ISecretStore> CreateStoreAsync();

    private static SecretRecord Secret(string name, byte[] sealedValue, DateTimeOffset at, params string[] queues) =>
        new(name, sealedValue, queues, at, at);

    private static void AssertSame(SecretRecord expected, SecretRecord? actual)
    {
        Assert.NotNull(actual);
        Assert.Equal(expected.Name, actual.Name);
        Assert.Equal(expected.Sealed.ToArray(), actual.Sealed.ToArray());
        Assert.Equal(expected.Queues, actual.Queues);
        Assert.Equal(expected.CreatedAt, actual.CreatedAt);
        Assert.Equal(expected.UpdatedAt, actual.UpdatedAt);
    }

    [Fact]
    public async Task Put_ThenGet_RoundTripsEveryFieldAndBinaryValues()
    {
        var store = await CreateStoreAsync();
        var secret = Secret("db-password", [0, 1, 2, 255, 10, 13, 44], T0, "build", "deploy");

        var (stored, replaced) = await store.PutSecretAsync(secret, CancellationToken.None);
        var found = await store.GetSecretsAsync(["db-password", "missing"], CancellationToken.None);

        Assert.False(replaced);
        AssertSame(secret, stored);
        AssertSame(secret, Assert.Single(found).Value);
    }

    [Fact]
    public async Task Put_Again_ReplacesValueAndQueuesKeepsCreationDate()
    {
        var store = await CreateStoreAsync();
        await store.PutSecretAsync(Secret("k", [1], T0, "a"), CancellationToken.None);

        var (stored, replaced) = await store.PutSecretAsync(Secret("k", [2, 3], T0.AddMinutes(5)), CancellationToken.None);
        var found = (await store.GetSecretsAsync(["k"], CancellationToken.None))["k"];

        Assert.True(replaced);
        AssertSame(new SecretRecord("k", new byte[] { 2, 3 }, [], T0, T0.AddMinutes(5)), stored);
        AssertSame(stored, found);
    }

    [Fact]
    public async Task ListAndDelete()
    {
        var store = await CreateStoreAsync();
        await store.PutSecretAsync(Secret("a", [1], T0), CancellationToken.None);
        await store.PutSecretAsync(Secret("b", [2], T0, "q"), CancellationToken.None);

        var listed = (await store.ListSecretsAsync(CancellationToken.None)).Select(s => s.Name).Order(StringComparer.Ordinal).ToList();
        var deleted = await store.DeleteSecretAsync("b", CancellationToken.None);
        var again = await store.DeleteSecretAsync("b", CancellationToken.None);

        Assert.Equal(["a", "b"], listed);
        AssertSame(Secret("b", [2], T0, "q"), deleted);
        Assert.Null(again);
        Assert.Equal(["a"], (await store.ListSecretsAsync(CancellationToken.None)).Select(s => s.Name));
        Assert.Empty(await store.GetSecretsAsync(["b"], CancellationToken.None));
    }
}

public sealed class EmbeddedSecretStoreTests : SecretStoreContractTests
{
    protected override Task<ISecretStore> CreateStoreAsync() => Task.FromResult<ISecretStore>(new EmbeddedSecretStore());
}
