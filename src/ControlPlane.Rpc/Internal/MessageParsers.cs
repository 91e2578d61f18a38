using Google.Protobuf;

namespace ControlPlane.Rpc.Internal;

/// <summary>One cached parser per message type.</summary>
internal static class MessageParsers<T>
    where T : IMessage<T>, new()
{
    public static readonly MessageParser<T> Parser = new(() => new T());
}
