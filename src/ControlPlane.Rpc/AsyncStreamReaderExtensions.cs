using System.Runtime.CompilerServices;

namespace ControlPlane.Rpc;

/// <summary>Extensions over <see cref="IAsyncStreamReader{T}"/>.</summary>
public static class AsyncStreamReaderExtensions
{
    /// <summary>Reads every remaining message as an async sequence.</summary>
    public static IAsyncEnumerable<T> ReadAllAsync<T>(this IAsyncStreamReader<T> streamReader, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(streamReader);
        return ReadAllCore(streamReader, cancellationToken);
    }

    private static async IAsyncEnumerable<T> ReadAllCore<T>(IAsyncStreamReader<T> streamReader, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        while (await streamReader.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            yield return streamReader.Current;
        }
    }
}
