using ControlPlane.Rpc;
using Google.Protobuf;
using Grpc.Testing;

namespace ControlPlane.InteropServer.Internal;

/// <summary>
/// grpc.testing.TestService with the server features of grpc's interop-test-descriptions.md.
/// UnimplementedCall gets no handler (so it answers UNIMPLEMENTED) and UnimplementedService is
/// not bound at all.
/// </summary>
internal static class TestServiceDefinition
{
    private const string EchoInitialKey = "x-grpc-test-echo-initial";
    private const string EchoTrailingKey = "x-grpc-test-echo-trailing-bin";

    public static ServiceDefinition Create() =>
        ServiceDefinition.For(TestReflection.Descriptor.FindTypeByName<Google.Protobuf.Reflection.ServiceDescriptor>("TestService"))
            .AddUnary<Empty, Empty>("EmptyCall", EmptyCall)
            .AddUnary<SimpleRequest, SimpleResponse>("UnaryCall", UnaryCall)
            .AddUnary<SimpleRequest, SimpleResponse>("CacheableUnaryCall", CacheableUnaryCall)
            .AddServerStreaming<StreamingOutputCallRequest, StreamingOutputCallResponse>("StreamingOutputCall", StreamingOutputCall)
            .AddClientStreaming<StreamingInputCallRequest, StreamingInputCallResponse>("StreamingInputCall", StreamingInputCall)
            .AddDuplexStreaming<StreamingOutputCallRequest, StreamingOutputCallResponse>("FullDuplexCall", FullDuplexCall)
            .AddDuplexStreaming<StreamingOutputCallRequest, StreamingOutputCallResponse>("HalfDuplexCall", HalfDuplexCall)
            .Build();

    private static async Task<Empty> EmptyCall(Empty request, ServerCallContext context)
    {
        await EchoMetadataAsync(context).ConfigureAwait(false);
        return new Empty();
    }

    private static async Task<SimpleResponse> UnaryCall(SimpleRequest request, ServerCallContext context)
    {
        await EchoMetadataAsync(context).ConfigureAwait(false);
        CheckExpectedCompression(request.ExpectCompressed, 0);
        ThrowIfStatusRequested(request.ResponseStatus);
        SetResponseCompression(context, request.ResponseCompressed);
        return new SimpleResponse { Payload = CreatePayload(request.ResponseType, request.ResponseSize) };
    }

    private static Task<SimpleResponse> CacheableUnaryCall(SimpleRequest request, ServerCallContext context)
    {
        // A payload that differs per call, as the doc asks; no caching proxy is in front of this server.
        var now = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
        var body = ByteString.CopyFromUtf8(now.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return Task.FromResult(new SimpleResponse { Payload = new Payload { Body = body } });
    }

    private static async Task StreamingOutputCall(
        StreamingOutputCallRequest request, IServerStreamWriter<StreamingOutputCallResponse> responseStream, ServerCallContext context)
    {
        await EchoMetadataAsync(context).ConfigureAwait(false);
        await WriteResponsesAsync(request, responseStream, context).ConfigureAwait(false);
        ThrowIfStatusRequested(request.ResponseStatus);
    }

    private static async Task<StreamingInputCallResponse> StreamingInputCall(
        IAsyncStreamReader<StreamingInputCallRequest> requestStream, ServerCallContext context)
    {
        await EchoMetadataAsync(context).ConfigureAwait(false);
        var total = 0;
        var index = 0;
        while (await requestStream.MoveNext(context.CancellationToken).ConfigureAwait(false))
        {
            CheckExpectedCompression(requestStream.Current.ExpectCompressed, index++);
            total += requestStream.Current.Payload?.Body.Length ?? 0;
        }

        return new StreamingInputCallResponse { AggregatedPayloadSize = total };
    }

    private static async Task FullDuplexCall(
        IAsyncStreamReader<StreamingOutputCallRequest> requestStream, IServerStreamWriter<StreamingOutputCallResponse> responseStream, ServerCallContext context)
    {
        await EchoMetadataAsync(context).ConfigureAwait(false);
        while (await requestStream.MoveNext(context.CancellationToken).ConfigureAwait(false))
        {
            ThrowIfStatusRequested(requestStream.Current.ResponseStatus);
            await WriteResponsesAsync(requestStream.Current, responseStream, context).ConfigureAwait(false);
        }
    }

    private static async Task HalfDuplexCall(
        IAsyncStreamReader<StreamingOutputCallRequest> requestStream, IServerStreamWriter<StreamingOutputCallResponse> responseStream, ServerCallContext context)
    {
        await EchoMetadataAsync(context).ConfigureAwait(false);
        var requests = new List<StreamingOutputCallRequest>();
        while (await requestStream.MoveNext(context.CancellationToken).ConfigureAwait(false))
        {
            requests.Add(requestStream.Current);
        }

        foreach (var request in requests)
        {
            ThrowIfStatusRequested(request.ResponseStatus);
            await WriteResponsesAsync(request, responseStream, context).ConfigureAwait(false);
        }
    }

    private static async Task WriteResponsesAsync(
        StreamingOutputCallRequest request, IServerStreamWriter<StreamingOutputCallResponse> responseStream, ServerCallContext context)
    {
        if (request.ResponseParameters.Any(p => p.Compressed?.Value == true))
        {
            context.ResponseCompression = "gzip";
        }

        foreach (var parameters in request.ResponseParameters)
        {
            if (parameters.IntervalUs > 0)
            {
                await Task.Delay(TimeSpan.FromMicroseconds(parameters.IntervalUs), context.CancellationToken).ConfigureAwait(false);
            }

            // A message asks for compression explicitly; all others go out uncompressed.
            context.WriteOptions = parameters.Compressed?.Value == true ? null : new WriteOptions(NoCompress: true);
            var response = new StreamingOutputCallResponse { Payload = CreatePayload(request.ResponseType, parameters.Size) };
            await responseStream.WriteAsync(response, context.CancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task EchoMetadataAsync(ServerCallContext context)
    {
        var trailing = context.RequestHeaders.Get(EchoTrailingKey);
        if (trailing is not null)
        {
            context.ResponseTrailers.Add(EchoTrailingKey, trailing.ValueBytes);
        }

        var initial = context.RequestHeaders.Get(EchoInitialKey);
        if (initial is not null)
        {
            await context.WriteResponseHeadersAsync(new Metadata { { EchoInitialKey, initial.Value } }).ConfigureAwait(false);
        }
    }

    private static void SetResponseCompression(ServerCallContext context, BoolValue? compressed)
    {
        if (compressed?.Value == true)
        {
            context.ResponseCompression = "gzip";
        }
        else
        {
            context.WriteOptions = new WriteOptions(NoCompress: true);
        }
    }

    // The CompressedRequest feature: when the client states an expectation, it must match the wire.
    private static void CheckExpectedCompression(BoolValue? expected, int messageIndex)
    {
        if (expected is null)
        {
            return;
        }

        var arrived = RequestFrameObserver.Current.IsCompressed(messageIndex)
            ?? throw new RpcException(new Status(StatusCode.Internal, $"request message {messageIndex} was not observed on the wire"));
        if (arrived != expected.Value)
        {
            throw new RpcException(new Status(
                StatusCode.InvalidArgument,
                expected.Value ? "Expected compressed request, got uncompressed" : "Expected uncompressed request, got compressed"));
        }
    }

    private static void ThrowIfStatusRequested(EchoStatus? status)
    {
        if (status is null || status.Code == 0)
        {
            return;
        }

        if (status.Code is < 0 or > (int)StatusCode.Unauthenticated)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"response_status.code {status.Code} is not a gRPC status code (0-16)"));
        }

        throw new RpcException(new Status((StatusCode)status.Code, status.Message));
    }

    private static Payload CreatePayload(PayloadType type, int size)
    {
        if (type != PayloadType.Compressable)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"response_type {type} is not supported; use COMPRESSABLE"));
        }

        if (size < 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"response size {size} is negative; use a size >= 0"));
        }

        return new Payload { Type = PayloadType.Compressable, Body = ByteString.CopyFrom(new byte[size]) };
    }
}
