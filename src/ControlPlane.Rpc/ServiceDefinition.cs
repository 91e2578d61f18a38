using ControlPlane.Rpc.Internal;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace ControlPlane.Rpc;

/// <summary>
/// A service bound from its protobuf descriptor: handlers for some or all of its methods.
/// Methods without a handler answer UNIMPLEMENTED.
/// </summary>
public sealed class ServiceDefinition
{
    private ServiceDefinition(ServiceDescriptor descriptor, IReadOnlyDictionary<string, ServerMethodBinding> bindings)
    {
        Descriptor = descriptor;
        Bindings = bindings;
    }

    /// <summary>The fully-qualified service name, "pkg.Service".</summary>
    public string ServiceName => Descriptor.FullName;

    /// <summary>The proto service this definition serves.</summary>
    public ServiceDescriptor Descriptor { get; }

    /// <summary>Handlers by method name.</summary>
    internal IReadOnlyDictionary<string, ServerMethodBinding> Bindings { get; }

    /// <summary>Starts binding handlers to the methods of a proto service.</summary>
    public static Builder For(ServiceDescriptor descriptor)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        return new Builder(descriptor);
    }

    /// <summary>
    /// Adds handlers, checking each against the proto: the method must exist and its message types and
    /// streaming shape must match, else <see cref="InvalidOperationException"/> names the method.
    /// </summary>
    public sealed class Builder
    {
        private readonly ServiceDescriptor _descriptor;
        private readonly Dictionary<string, ServerMethodBinding> _bindings = new(StringComparer.Ordinal);

        internal Builder(ServiceDescriptor descriptor) => _descriptor = descriptor;

        public Builder AddUnary<TRequest, TResponse>(string methodName, UnaryServerMethod<TRequest, TResponse> handler)
            where TRequest : class, IMessage<TRequest>, new()
            where TResponse : class, IMessage<TResponse>, new()
        {
            ArgumentNullException.ThrowIfNull(handler);
            var method = Resolve<TRequest, TResponse>(methodName, MethodType.Unary, nameof(AddUnary));
            _bindings.Add(methodName, new ServerMethodBinding<TRequest, TResponse>(method, handler));
            return this;
        }

        public Builder AddClientStreaming<TRequest, TResponse>(string methodName, ClientStreamingServerMethod<TRequest, TResponse> handler)
            where TRequest : class, IMessage<TRequest>, new()
            where TResponse : class, IMessage<TResponse>, new()
        {
            ArgumentNullException.ThrowIfNull(handler);
            var method = Resolve<TRequest, TResponse>(methodName, MethodType.ClientStreaming, nameof(AddClientStreaming));
            _bindings.Add(methodName, new ServerMethodBinding<TRequest, TResponse>(method, handler));
            return this;
        }

        public Builder AddServerStreaming<TRequest, TResponse>(string methodName, ServerStreamingServerMethod<TRequest, TResponse> handler)
            where TRequest : class, IMessage<TRequest>, new()
            where TResponse : class, IMessage<TResponse>, new()
        {
            ArgumentNullException.ThrowIfNull(handler);
            var method = Resolve<TRequest, TResponse>(methodName, MethodType.ServerStreaming, nameof(AddServerStreaming));
            _bindings.Add(methodName, new ServerMethodBinding<TRequest, TResponse>(method, handler));
            return this;
        }

        public Builder AddDuplexStreaming<TRequest, TResponse>(string methodName, DuplexStreamingServerMethod<TRequest, TResponse> handler)
            where TRequest : class, IMessage<TRequest>, new()
            where TResponse : class, IMessage<TResponse>, new()
        {
            ArgumentNullException.ThrowIfNull(handler);
            var method = Resolve<TRequest, TResponse>(methodName, MethodType.DuplexStreaming, nameof(AddDuplexStreaming));
            _bindings.Add(methodName, new ServerMethodBinding<TRequest, TResponse>(method, handler));
            return this;
        }

        /// <summary>The finished definition.</summary>
        public ServiceDefinition Build() => new(_descriptor, new Dictionary<string, ServerMethodBinding>(_bindings, StringComparer.Ordinal));

        private Method<TRequest, TResponse> Resolve<TRequest, TResponse>(string methodName, MethodType type, string adder)
            where TRequest : class, IMessage<TRequest>, new()
            where TResponse : class, IMessage<TResponse>, new()
        {
            ArgumentException.ThrowIfNullOrEmpty(methodName);
            var fullName = "/" + _descriptor.FullName + "/" + methodName;
            var descriptor = _descriptor.FindMethodByName(methodName);
            if (descriptor is null)
            {
                var known = string.Join(", ", _descriptor.Methods.Select(m => m.Name));
                throw new InvalidOperationException(
                    $"Method {fullName} is not in the proto service {_descriptor.FullName}; its methods are: {known}.");
            }

            if (_bindings.ContainsKey(methodName))
            {
                throw new InvalidOperationException($"Method {fullName} already has a handler; add each method once.");
            }

            var protoType = MethodTypes.Of(descriptor);
            if (protoType != type)
            {
                throw new InvalidOperationException(
                    $"Method {fullName} is {MethodTypes.Describe(protoType)} in the proto but was added with {adder} ({MethodTypes.Describe(type)}); use Add{protoType}.");
            }

            return Method<TRequest, TResponse>.FromDescriptor(descriptor);
        }
    }
}
