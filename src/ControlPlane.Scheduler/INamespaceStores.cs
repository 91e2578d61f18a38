namespace ControlPlane.Scheduler;

/// <summary>
/// The run stores of every namespace one scheduler serves. A namespace is opened the first time a call names it (or,
/// on another replica, once it is listed here) and stays open until the provider is disposed, which disposes its stores.
/// </summary>
public interface INamespaceStores : IAsyncDisposable
{
    /// <summary>
    /// The store of <paramref name="ns"/> (a valid namespace name), opened once and shared by later calls. Opening
    /// records the namespace, so every replica's maintenance finds it through <see cref="ListAsync"/>.
    /// </summary>
    Task<IRunStore> OpenAsync(string ns, CancellationToken cancellationToken = default);

    /// <summary>Every namespace opened so far, by any replica sharing these stores.</summary>
    Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken = default);
}
