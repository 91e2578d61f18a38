namespace ControlPlane.Scheduler;

/// <summary>
/// The run stores of every namespace one scheduler serves. A namespace exists once something was made in it (a run,
/// an agent, a token, a secret, a limit): opening its store records it, so every replica's maintenance finds it through
/// <see cref="ListAsync"/>. Disposing the provider disposes its stores.
/// </summary>
public interface INamespaceStores : IAsyncDisposable
{
    /// <summary>
    /// The store of <paramref name="ns"/> (a valid namespace name), opened once and shared by later calls, and the
    /// namespace recorded as existing.
    /// </summary>
    Task<IRunStore> OpenAsync(string ns, CancellationToken cancellationToken = default);

    /// <summary>Whether <paramref name="ns"/> exists (was opened by any replica sharing these stores).</summary>
    Task<bool> ExistsAsync(string ns, CancellationToken cancellationToken = default);

    /// <summary>Every namespace that exists.</summary>
    Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken = default);

    /// <summary>Records <paramref name="names"/> as existing again, after the record of them was lost (Redis restarted without its data).</summary>
    Task RelistAsync(IReadOnlyCollection<string> names, CancellationToken cancellationToken = default);
}
