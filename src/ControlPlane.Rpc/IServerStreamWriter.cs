namespace ControlPlane.Rpc;

/// <summary>The response stream of a server-streaming or duplex call, on the server.</summary>
public interface IServerStreamWriter<in T> : IAsyncStreamWriter<T>
{
    /// <summary>Options for the following writes; the same as <see cref="ServerCallContext.WriteOptions"/>.</summary>
    WriteOptions? WriteOptions { get; set; }
}
