using Google.Protobuf;
using Microsoft.AspNetCore.Http;

namespace ControlPlane.Rpc.Internal;

/// <summary>A typed handler for one method; composes the interceptor chain once, at mapping time.</summary>
internal sealed class ServerMethodBinding<TRequest, TResponse> : ServerMethodBinding
    where TRequest : class, IMessage<TRequest>, new()
    where TResponse : class, IMessage<TResponse>, new()
{
    private readonly Delegate _handler;

    public ServerMethodBinding(Method<TRequest, TResponse> method, Delegate handler)
    {
        Method = method;
        _handler = handler;
    }

    public Method<TRequest, TResponse> Method { get; }

    public override string FullName => Method.FullName;

    public override MethodType Type => Method.Type;

    public override RequestDelegate CreateRequestDelegate(ServerRuntime runtime)
    {
        var interceptors = runtime.Options.Interceptors;
        ServerCallHandler<TRequest, TResponse> handler;
        switch (Method.Type)
        {
            case MethodType.Unary:
            {
                var next = (UnaryServerMethod<TRequest, TResponse>)_handler;
                for (var i = interceptors.Count - 1; i >= 0; i--)
                {
                    var interceptor = interceptors[i];
                    var inner = next;
                    next = (request, context) => interceptor.UnaryServerHandler(request, context, inner);
                }

                handler = new ServerCallHandler<TRequest, TResponse>(Method, runtime, unary: next);
                break;
            }

            case MethodType.ClientStreaming:
            {
                var next = (ClientStreamingServerMethod<TRequest, TResponse>)_handler;
                for (var i = interceptors.Count - 1; i >= 0; i--)
                {
                    var interceptor = interceptors[i];
                    var inner = next;
                    next = (requests, context) => interceptor.ClientStreamingServerHandler(requests, context, inner);
                }

                handler = new ServerCallHandler<TRequest, TResponse>(Method, runtime, clientStreaming: next);
                break;
            }

            case MethodType.ServerStreaming:
            {
                var next = (ServerStreamingServerMethod<TRequest, TResponse>)_handler;
                for (var i = interceptors.Count - 1; i >= 0; i--)
                {
                    var interceptor = interceptors[i];
                    var inner = next;
                    next = (request, responses, context) => interceptor.ServerStreamingServerHandler(request, responses, context, inner);
                }

                handler = new ServerCallHandler<TRequest, TResponse>(Method, runtime, serverStreaming: next);
                break;
            }

            default:
            {
                var next = (DuplexStreamingServerMethod<TRequest, TResponse>)_handler;
                for (var i = interceptors.Count - 1; i >= 0; i--)
                {
                    var interceptor = interceptors[i];
                    var inner = next;
                    next = (requests, responses, context) => interceptor.DuplexStreamingServerHandler(requests, responses, context, inner);
                }

                handler = new ServerCallHandler<TRequest, TResponse>(Method, runtime, duplex: next);
                break;
            }
        }

        return handler.HandleAsync;
    }
}
