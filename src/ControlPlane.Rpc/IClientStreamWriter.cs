namespace ControlPlane.Rpc;

/// <summary>The request stream of a client-streaming or duplex call, on the client.</summary>
public interface IClientStreamWriter<in T> : IAsyncStreamWriter<T>
{
    /// <summary>Options for the following writes (e.g. per-message compression off).</summary>
    WriteOptions? WriteOptions { get; set; }

    /// <summary>Half-closes the request stream.</summary>
    Task CompleteAsync();
}
