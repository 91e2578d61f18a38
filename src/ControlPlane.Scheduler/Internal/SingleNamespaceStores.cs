using ControlPlane.V1;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// A scheduler over one given store: it serves that store's namespace and refuses calls naming another with a message
/// that says so. The caller owns the store.
/// </summary>
internal sealed class SingleNamespaceStores(IRunStore store, string ns) : INamespaceStores
{
    public Task<IRunStore> OpenAsync(string name, CancellationToken cancellationToken = default) =>
        name == ns
            ? Task.FromResult(store)
            : throw new RunStoreException(RunStoreError.FailedPrecondition, ErrorReason.NamespaceNotAllowed,
                $"this scheduler serves namespace '{ns}' only (it was started over one store), not '{name}'; drop the cp-namespace header or name '{ns}'");

    public Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken = default) => Task.FromResult<IReadOnlyList<string>>([ns]);

    public Task<bool> ExistsAsync(string name, CancellationToken cancellationToken = default) => Task.FromResult(name == ns);

    public Task RelistAsync(IReadOnlyCollection<string> names, CancellationToken cancellationToken = default) => Task.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
