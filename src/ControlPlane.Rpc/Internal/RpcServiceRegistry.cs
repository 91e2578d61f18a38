using Microsoft.AspNetCore.Routing;

namespace ControlPlane.Rpc.Internal;

/// <summary>Tracks mapped services per endpoint builder, so a service is mapped once and the UNIMPLEMENTED fallback once.</summary>
internal sealed class RpcServiceRegistry
{
    private readonly Dictionary<IEndpointRouteBuilder, HashSet<string>> _services = new(ReferenceEqualityComparer.Instance);

    public ServerCallTracker Tracker { get; } = new();

    /// <summary>Records a service; returns true when it is the first service on this builder.</summary>
    public bool Register(IEndpointRouteBuilder endpoints, string serviceName)
    {
        lock (_services)
        {
            var first = false;
            if (!_services.TryGetValue(endpoints, out var names))
            {
                names = new HashSet<string>(StringComparer.Ordinal);
                _services.Add(endpoints, names);
                first = true;
            }

            if (!names.Add(serviceName))
            {
                throw new InvalidOperationException($"Service {serviceName} is already mapped; call MapRpcService once per service.");
            }

            return first;
        }
    }
}
