using ControlPlane.Rpc.Internal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace ControlPlane.Rpc;

/// <summary>Registers the gRPC server services.</summary>
public static class RpcServiceCollectionExtensions
{
    /// <summary>Adds routing and the gRPC server; configure options such as interceptors and limits.</summary>
    public static IServiceCollection AddRpc(this IServiceCollection services, Action<RpcServerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddRoutingCore();
        services.AddLogging();
        var optionsBuilder = services.AddOptions<RpcServerOptions>();
        if (configure is not null)
        {
            optionsBuilder.Configure(configure);
        }

        services.TryAddSingleton<RpcServiceRegistry>();
        return services;
    }
}
