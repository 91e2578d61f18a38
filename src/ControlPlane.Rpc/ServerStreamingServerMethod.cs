namespace ControlPlane.Rpc;

/// <summary>A server-streaming handler.</summary>
public delegate Task ServerStreamingServerMethod<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context);
