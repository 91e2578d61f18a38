namespace ControlPlane.Rpc;

/// <summary>
/// Wraps server handlers (auth, logging, metrics). Interceptors run in the order they are listed in
/// <see cref="RpcServerOptions.Interceptors"/>; each calls the continuation to run the rest of the chain.
/// </summary>
public abstract class ServerInterceptor
{
    public virtual Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request,
        ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
        where TRequest : class
        where TResponse : class
    {
        ArgumentNullException.ThrowIfNull(continuation);
        return continuation(request, context);
    }

    public virtual Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context,
        ClientStreamingServerMethod<TRequest, TResponse> continuation)
        where TRequest : class
        where TResponse : class
    {
        ArgumentNullException.ThrowIfNull(continuation);
        return continuation(requestStream, context);
    }

    public virtual Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request,
        IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context,
        ServerStreamingServerMethod<TRequest, TResponse> continuation)
        where TRequest : class
        where TResponse : class
    {
        ArgumentNullException.ThrowIfNull(continuation);
        return continuation(request, responseStream, context);
    }

    public virtual Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation)
        where TRequest : class
        where TResponse : class
    {
        ArgumentNullException.ThrowIfNull(continuation);
        return continuation(requestStream, responseStream, context);
    }
}
