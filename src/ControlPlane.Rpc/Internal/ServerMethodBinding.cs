using Microsoft.AspNetCore.Http;

namespace ControlPlane.Rpc.Internal;

/// <summary>A handler bound to one proto method, independent of its message types.</summary>
internal abstract class ServerMethodBinding
{
    public abstract string FullName { get; }

    public abstract MethodType Type { get; }

    /// <summary>The request delegate serving this method, with the server's interceptors applied.</summary>
    public abstract RequestDelegate CreateRequestDelegate(ServerRuntime runtime);
}
