using Microsoft.Extensions.Logging;

namespace ControlPlane.Rpc.Internal;

/// <summary>What every call handler of one server shares: options, the active-call count, the logger.</summary>
internal sealed class ServerRuntime
{
    public ServerRuntime(RpcServerOptions options, ServerCallTracker tracker, ILogger logger)
    {
        Options = options;
        Tracker = tracker;
        Logger = logger;
    }

    public RpcServerOptions Options { get; }

    public ServerCallTracker Tracker { get; }

    public ILogger Logger { get; }
}
