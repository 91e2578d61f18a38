using Google.Protobuf.Reflection;

namespace ControlPlane.Rpc.Internal;

/// <summary>Maps proto streaming flags to <see cref="MethodType"/>.</summary>
internal static class MethodTypes
{
    public static MethodType Of(MethodDescriptor method) => (method.IsClientStreaming, method.IsServerStreaming) switch
    {
        (false, false) => MethodType.Unary,
        (true, false) => MethodType.ClientStreaming,
        (false, true) => MethodType.ServerStreaming,
        _ => MethodType.DuplexStreaming,
    };

    public static string Describe(MethodType type) => type switch
    {
        MethodType.Unary => "unary",
        MethodType.ClientStreaming => "client-streaming",
        MethodType.ServerStreaming => "server-streaming",
        _ => "duplex-streaming",
    };
}
