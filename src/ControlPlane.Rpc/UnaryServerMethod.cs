namespace ControlPlane.Rpc;

/// <summary>A unary handler.</summary>
public delegate Task<TResponse> UnaryServerMethod<TRequest, TResponse>(TRequest request, ServerCallContext context);
