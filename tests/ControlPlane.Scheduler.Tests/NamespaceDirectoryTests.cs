using ControlPlane.Scheduler.Audit;
using ControlPlane.Scheduler.Security;
using ControlPlane.Scheduler.Services;
using ControlPlane.V1;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

/// <summary>The namespaces one replica serves: those other replicas opened are found, one that cannot open stops no other.</summary>
public sealed class NamespaceDirectoryTests
{
    [Fact]
    public async Task Discover_OneNamespaceFailsToOpen_TheOthersAreServedAndItIsTriedAgain()
    {
        await using var stores = new FlakyStores("a-broken", "b", "c");
        var directory = new NamespaceDirectory(stores, (ns, ct) => StartAsync(stores, ns, ct), NullLogger.Instance);
        await directory.StartAsync("default", CancellationToken.None);

        await directory.DiscoverOnceAsync(CancellationToken.None);
        var first = directory.Opened.Select(n => n.Name).ToArray();
        stores.Broken = null;
        await directory.DiscoverOnceAsync(CancellationToken.None);
        var second = directory.Opened.Select(n => n.Name).ToArray();

        Assert.Equal(["b", "c", "default"], first);
        Assert.Equal(["a-broken", "b", "c", "default"], second);
        await StopAsync(directory);
    }

    [Fact]
    public async Task Discover_TheRecordOfAnOpenNamespaceWasLost_ItIsRecordedAgain()
    {
        await using var stores = new FlakyStores();
        var directory = new NamespaceDirectory(stores, (ns, ct) => StartAsync(stores, ns, ct), NullLogger.Instance);
        await directory.StartAsync("default", CancellationToken.None);
        await directory.GetAsync("team-a", create: true, CancellationToken.None);

        stores.Forget();
        await directory.DiscoverOnceAsync(CancellationToken.None);

        Assert.Equal(["default", "team-a"], await stores.ListAsync());
        await StopAsync(directory);
    }

    [Fact]
    public async Task Discover_DuringShutdown_EndsQuietlyInsteadOfThrowing()
    {
        await using var stores = new FlakyStores("b");
        var directory = new NamespaceDirectory(stores, (ns, ct) => StartAsync(stores, ns, ct), NullLogger.Instance);
        await directory.StartAsync("default", CancellationToken.None);
        var opened = await directory.CloseAsync();

        // A tick that was under way when the replica began closing: its token is the closing one.
        var tick = directory.DiscoverOnceAsync(new CancellationToken(canceled: true));

        await tick;
        Assert.True(tick.IsCompletedSuccessfully);
        foreach (var ns in opened)
        {
            await ns.CompletePipelineAsync(CancellationToken.None);
            await ns.StopAsync();
        }
    }

    private static Task<NamespaceRuntime> StartAsync(FlakyStores stores, string ns, CancellationToken ct) =>
        stores.OpenAsync(ns, ct).ContinueWith(
            t => NamespaceRuntime.StartAsync(ns, t.Result, new SchedulerOptions(), new EmbeddedSecretStore(), null, new EmbeddedAuditStore(), TimeProvider.System, NullLogger.Instance, ct),
            ct, TaskContinuationOptions.None, TaskScheduler.Default).Unwrap();

    private static async Task StopAsync(NamespaceDirectory directory)
    {
        foreach (var ns in await directory.CloseAsync())
        {
            await ns.CompletePipelineAsync(CancellationToken.None);
            await ns.StopAsync();
        }
    }

    /// <summary>Embedded stores with a registry the test can edit, and one namespace that fails to open while <see cref="Broken"/> names it.</summary>
    private sealed class FlakyStores(params string[] listed) : INamespaceStores
    {
        private readonly EmbeddedNamespaceStores _inner = new(new RunStoreOptions());
        private readonly SortedSet<string> _listed = new(listed, StringComparer.Ordinal);

        public string? Broken { get; set; } = listed.FirstOrDefault(n => n.EndsWith("-broken", StringComparison.Ordinal));

        public void Forget()
        {
            lock (_listed)
            {
                _listed.Clear();
            }
        }

        public Task<IRunStore> OpenAsync(string ns, CancellationToken cancellationToken = default)
        {
            if (ns == Broken)
            {
                throw new RunStoreException(RunStoreError.FailedPrecondition, ErrorReason.StoreFormatMismatch, $"the data under cp:{{{ns}}}: is format 99");
            }

            lock (_listed)
            {
                _listed.Add(ns);
            }

            return _inner.OpenAsync(ns, cancellationToken);
        }

        public Task<bool> ExistsAsync(string ns, CancellationToken cancellationToken = default)
        {
            lock (_listed)
            {
                return Task.FromResult(_listed.Contains(ns));
            }
        }

        public Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken = default)
        {
            lock (_listed)
            {
                return Task.FromResult<IReadOnlyList<string>>([.. _listed]);
            }
        }

        public Task RelistAsync(IReadOnlyCollection<string> names, CancellationToken cancellationToken = default)
        {
            lock (_listed)
            {
                _listed.UnionWith(names);
            }

            return Task.CompletedTask;
        }

        public ValueTask DisposeAsync() => _inner.DisposeAsync();
    }
}
