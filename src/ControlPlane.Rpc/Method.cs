using ControlPlane.Rpc.Internal;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace ControlPlane.Rpc;

/// <summary>A method's name, streaming shape and message types.</summary>
public sealed class Method<TRequest, TResponse>
    where TRequest : IMessage<TRequest>, new()
    where TResponse : IMessage<TResponse>, new()
{
    public Method(MethodType type, string serviceName, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ArgumentException.ThrowIfNullOrEmpty(name);
        Type = type;
        ServiceName = serviceName;
        Name = name;
        FullName = "/" + serviceName + "/" + name;
    }

    /// <summary>The streaming shape.</summary>
    public MethodType Type { get; }

    /// <summary>The fully-qualified service name, "pkg.Service".</summary>
    public string ServiceName { get; }

    /// <summary>The method name, "Method".</summary>
    public string Name { get; }

    /// <summary>The HTTP/2 path, "/pkg.Service/Method".</summary>
    public string FullName { get; }

    /// <summary>Parses request messages.</summary>
    public MessageParser<TRequest> RequestParser => MessageParsers<TRequest>.Parser;

    /// <summary>Parses response messages.</summary>
    public MessageParser<TResponse> ResponseParser => MessageParsers<TResponse>.Parser;

    /// <summary>
    /// A method from its protobuf descriptor; throws <see cref="InvalidOperationException"/> naming the
    /// method when the descriptor's message types differ from TRequest/TResponse.
    /// </summary>
    public static Method<TRequest, TResponse> FromDescriptor(MethodDescriptor method)
    {
        ArgumentNullException.ThrowIfNull(method);
        var type = MethodTypes.Of(method);
        var fullName = "/" + method.Service.FullName + "/" + method.Name;
        if (method.InputType.ClrType != typeof(TRequest))
        {
            throw new InvalidOperationException(
                $"Method {fullName}: the proto request type is {method.InputType.FullName} ({method.InputType.ClrType?.FullName ?? "no CLR type"}), but the handler takes {typeof(TRequest).FullName}.");
        }

        if (method.OutputType.ClrType != typeof(TResponse))
        {
            throw new InvalidOperationException(
                $"Method {fullName}: the proto response type is {method.OutputType.FullName} ({method.OutputType.ClrType?.FullName ?? "no CLR type"}), but the handler returns {typeof(TResponse).FullName}.");
        }

        return new Method<TRequest, TResponse>(type, method.Service.FullName, method.Name);
    }

    /// <inheritdoc />
    public override string ToString() => FullName;
}
