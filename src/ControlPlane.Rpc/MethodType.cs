namespace ControlPlane.Rpc;

/// <summary>The streaming shape of a method.</summary>
public enum MethodType
{
    Unary,
    ClientStreaming,
    ServerStreaming,
    DuplexStreaming,
}
