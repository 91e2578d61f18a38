using ControlPlane.Rpc.Internal;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ControlPlane.Rpc;

/// <summary>Maps gRPC services onto ASP.NET Core endpoints.</summary>
public static class RpcEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps every method of the service at "/pkg.Service/Method". Methods without a handler, and unknown
    /// services and methods, answer UNIMPLEMENTED.
    /// </summary>
    public static IEndpointConventionBuilder MapRpcService(this IEndpointRouteBuilder endpoints, ServiceDefinition service)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(service);
        var provider = endpoints.ServiceProvider;
        var registry = provider.GetService<RpcServiceRegistry>()
            ?? throw new InvalidOperationException("MapRpcService needs the gRPC server services; call services.AddRpc() first.");
        var options = provider.GetRequiredService<IOptions<RpcServerOptions>>().Value;
        options.Validate();
        var logger = provider.GetRequiredService<ILoggerFactory>().CreateLogger("ControlPlane.Rpc.Server");
        var runtime = new ServerRuntime(options, registry.Tracker, logger);

        var first = registry.Register(endpoints, service.ServiceName);
        var builders = new List<IEndpointConventionBuilder>();
        foreach (var methodDescriptor in service.Descriptor.Methods)
        {
            var path = "/" + service.ServiceName + "/" + methodDescriptor.Name;
            var requestDelegate = service.Bindings.TryGetValue(methodDescriptor.Name, out var binding)
                ? binding.CreateRequestDelegate(runtime)
                : new UnimplementedHandler(runtime, $"Method {path} is not implemented by this server.").HandleAsync;
            builders.Add(endpoints.Map(path, requestDelegate).WithDisplayName("gRPC " + path));
        }

        if (first)
        {
            // Unknown services and methods: lowest priority, so real endpoints always win.
            var fallback = endpoints.Map("/{service}/{method}", new UnimplementedHandler(runtime, null).HandleAsync)
                .WithDisplayName("gRPC unimplemented");
            fallback.Add(b => ((RouteEndpointBuilder)b).Order = int.MaxValue);
        }

        return new CompositeConventionBuilder(builders);
    }

    private sealed class CompositeConventionBuilder : IEndpointConventionBuilder
    {
        private readonly List<IEndpointConventionBuilder> _builders;

        public CompositeConventionBuilder(List<IEndpointConventionBuilder> builders) => _builders = builders;

        public void Add(Action<EndpointBuilder> convention)
        {
            foreach (var builder in _builders)
            {
                builder.Add(convention);
            }
        }

        public void Finally(Action<EndpointBuilder> finallyConvention)
        {
            foreach (var builder in _builders)
            {
                builder.Finally(finallyConvention);
            }
        }
    }
}
