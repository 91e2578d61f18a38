namespace ControlPlane.Rpc;

/// <summary>The response stream of a server-streaming or duplex call, on the server.</summary>
public interface IServerStreamWriter<in T> : IAsyncStreamWriter<T>
{
}
