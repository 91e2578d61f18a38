using Google.Protobuf;
using Microsoft.AspNetCore.Http;

namespace ControlPlane.Rpc.Internal;

/// <summary>Serves every call of one method: validates, runs the handler chain, ends the call.</summary>
internal sealed class ServerCallHandler<TRequest, TResponse>
    where TRequest : class, IMessage<TRequest>, new()
    where TResponse : class, IMessage<TResponse>, new()
{
    private readonly Method<TRequest, TResponse> _method;
    private readonly ServerRuntime _runtime;
    private readonly UnaryServerMethod<TRequest, TResponse>? _unary;
    private readonly ClientStreamingServerMethod<TRequest, TResponse>? _clientStreaming;
    private readonly ServerStreamingServerMethod<TRequest, TResponse>? _serverStreaming;
    private readonly DuplexStreamingServerMethod<TRequest, TResponse>? _duplex;

    public ServerCallHandler(
        Method<TRequest, TResponse> method,
        ServerRuntime runtime,
        UnaryServerMethod<TRequest, TResponse>? unary = null,
        ClientStreamingServerMethod<TRequest, TResponse>? clientStreaming = null,
        ServerStreamingServerMethod<TRequest, TResponse>? serverStreaming = null,
        DuplexStreamingServerMethod<TRequest, TResponse>? duplex = null)
    {
        _method = method;
        _runtime = runtime;
        _unary = unary;
        _clientStreaming = clientStreaming;
        _serverStreaming = serverStreaming;
        _duplex = duplex;
    }

    public async Task HandleAsync(HttpContext http)
    {
        if (!ServerProtocol.ValidateRequest(http, _runtime, _method.FullName))
        {
            return;
        }

        var call = new HttpServerCallContext(http, _method.FullName, _runtime);
        try
        {
            var error = call.Initialize();
            if (error is { } status)
            {
                ServerProtocol.WriteTrailersOnly(http, status, null);
                if (status.StatusCode == StatusCode.Unimplemented)
                {
                    http.Response.Headers[GrpcProtocol.AcceptEncodingHeader] = GrpcProtocol.SupportedEncodings;
                }

                return;
            }

            _runtime.Tracker.CallStarted();
            var run = RunAsync(call);
            if (!run.IsCompleted)
            {
                await call.WhenHandlerCompletedOrEndedAsync().ConfigureAwait(false);
            }

            if (call.HandlerCompleted)
            {
                _runtime.Tracker.CallEnded();
                await call.FinishAsync(call.HandlerError).ConfigureAwait(false);
            }
            else
            {
                // The call is over for the client; the handler may still be unwinding and is only accounted for when it ends.
                await call.EndEarlyAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            call.Dispose();
        }
    }

    /// <summary>Runs the handler chain; never faults: the outcome goes to the call, which decides how the call ends.</summary>
    private async Task RunAsync(HttpServerCallContext call)
    {
        Exception? error = null;
        try
        {
            switch (_method.Type)
            {
                case MethodType.Unary:
                {
                    var request = await call.ReadSingleMessageAsync(MessageParsers<TRequest>.Parser).ConfigureAwait(false);
                    var response = await _unary!(request, call).ConfigureAwait(false);
                    await WriteSingleResponseAsync(call, response).ConfigureAwait(false);
                    break;
                }

                case MethodType.ClientStreaming:
                {
                    var reader = new HttpRequestStreamReader<TRequest>(call);
                    var response = await _clientStreaming!(reader, call).ConfigureAwait(false);
                    await WriteSingleResponseAsync(call, response).ConfigureAwait(false);
                    break;
                }

                case MethodType.ServerStreaming:
                {
                    var request = await call.ReadSingleMessageAsync(MessageParsers<TRequest>.Parser).ConfigureAwait(false);
                    await _serverStreaming!(request, new HttpResponseStreamWriter<TResponse>(call), call).ConfigureAwait(false);
                    break;
                }

                default:
                    await _duplex!(new HttpRequestStreamReader<TRequest>(call), new HttpResponseStreamWriter<TResponse>(call), call).ConfigureAwait(false);
                    break;
            }
        }
        catch (Exception ex)
        {
            error = ex;
        }

        if (!call.OnHandlerCompleted(error))
        {
            ServerLog.HandlerEndedAfterCall(_runtime.Logger, _method.FullName, error);
            _runtime.Tracker.CallEnded();
        }
    }

    private static ValueTask WriteSingleResponseAsync(HttpServerCallContext call, TResponse? response)
    {
        if (call.Status.StatusCode != StatusCode.OK)
        {
            // The handler chose an error status; a response message would contradict it.
            return ValueTask.CompletedTask;
        }

        if (response is null)
        {
            throw new RpcException(new Status(StatusCode.Internal, "The handler returned no response message."));
        }

        // Left unflushed: Kestrel sends it together with the trailers when the call completes.
        return call.WriteMessageAsync(response, flush: false, CancellationToken.None);
    }
}
