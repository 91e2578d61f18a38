using System.Collections.Concurrent;
using ControlPlane.Rpc;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Rpc.Tests;

/// <summary>
/// The cp.test.Echo service of peers/grpcio_echo_server.py, described at run time over the protobuf
/// wrapper types, plus the same behaviour hosted on our own server. Request metadata steers each call.
/// </summary>
public static class ClientEchoService
{
    public const string ServiceName = "cp.test.Echo";

    public static readonly ServiceDescriptor Descriptor = BuildDescriptor();

    public static readonly Method<BytesValue, BytesValue> Unary = new(MethodType.Unary, ServiceName, "Unary");
    public static readonly Method<BytesValue, BytesValue> ServerStream = new(MethodType.ServerStreaming, ServiceName, "ServerStream");
    public static readonly Method<BytesValue, BytesValue> ClientStream = new(MethodType.ClientStreaming, ServiceName, "ClientStream");
    public static readonly Method<BytesValue, BytesValue> Duplex = new(MethodType.DuplexStreaming, ServiceName, "Duplex");
    public static readonly Method<BytesValue, BytesValue> Sleep = new(MethodType.Unary, ServiceName, "Sleep");
    public static readonly Method<StringValue, BoolValue> WasCancelled = new(MethodType.Unary, ServiceName, "WasCancelled");

    public static BytesValue Bytes(string text) => new() { Value = ByteString.CopyFromUtf8(text) };

    /// <summary>Our server's implementation of the same service.</summary>
    public static ServiceDefinition Definition()
    {
        var cancelled = new ConcurrentDictionary<string, TaskCompletionSource>();
        TaskCompletionSource Cancelled(string id) => cancelled.GetOrAdd(id, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

        return ServiceDefinition.For(Descriptor)
            .AddUnary<BytesValue, BytesValue>("Unary", async (request, context) =>
            {
                await PrepareAsync(context);
                MaybeFail(context);
                var size = context.RequestHeaders.GetValue("x-response-size");
                return size is null ? request : new BytesValue { Value = ByteString.CopyFrom(new byte[int.Parse(size)]) };
            })
            .AddServerStreaming<BytesValue, BytesValue>("ServerStream", async (request, responses, context) =>
            {
                await PrepareAsync(context);
                var count = int.Parse(context.RequestHeaders.GetValue("x-count") ?? "1");
                for (var i = 0; i < count; i++)
                {
                    await responses.WriteAsync(new BytesValue { Value = ByteString.CopyFrom([.. request.Value, .. System.Text.Encoding.ASCII.GetBytes(i.ToString())]) });
                }

                MaybeFail(context);
            })
            .AddClientStreaming<BytesValue, BytesValue>("ClientStream", async (requests, context) =>
            {
                await PrepareAsync(context);
                var joined = new List<byte>();
                await foreach (var request in requests.ReadAllAsync())
                {
                    joined.AddRange(request.Value);
                }

                MaybeFail(context);
                return new BytesValue { Value = ByteString.CopyFrom(joined.ToArray()) };
            })
            .AddDuplexStreaming<BytesValue, BytesValue>("Duplex", async (requests, responses, context) =>
            {
                await PrepareAsync(context);
                await foreach (var request in requests.ReadAllAsync())
                {
                    // Our server only: a request starting "hold:" is echoed with BufferHint, so it waits for the next echo.
                    responses.WriteOptions = request.Value.Span.StartsWith("hold:"u8) ? new WriteOptions(BufferHint: true) : null;
                    await responses.WriteAsync(request);
                }

                MaybeFail(context);
            })
            .AddUnary<BytesValue, BytesValue>("Sleep", async (request, context) =>
            {
                await context.WriteResponseHeadersAsync(new Metadata { { "x-sleeping", "1" } });
                try
                {
                    await Task.Delay(Timeout.Infinite, context.CancellationToken);
                }
                catch (OperationCanceledException)
                {
                    Cancelled(context.RequestHeaders.GetValue("x-call-id") ?? string.Empty).TrySetResult();
                    throw;
                }

                return request;
            })
            .AddUnary<StringValue, BoolValue>("WasCancelled", async (request, context) =>
            {
                var seen = Cancelled(request.Value).Task;
                var done = await Task.WhenAny(seen, Task.Delay(TimeSpan.FromSeconds(10), context.CancellationToken));
                return new BoolValue { Value = done == seen };
            })
            .Build();
    }

    private static async Task PrepareAsync(ServerCallContext context)
    {
        if (context.RequestHeaders.GetValue("x-compress") == "gzip")
        {
            context.ResponseCompression = "gzip";
        }

        var echoed = new Metadata();
        foreach (var entry in context.RequestHeaders)
        {
            if (entry.Key.StartsWith("x-echo-", StringComparison.Ordinal))
            {
                echoed.Add(entry);
                context.ResponseTrailers.Add(entry);
            }
        }

        if (echoed.Count > 0)
        {
            await context.WriteResponseHeadersAsync(echoed);
        }
    }

    private static void MaybeFail(ServerCallContext context)
    {
        var code = context.RequestHeaders.GetValue("x-fail-code");
        if (code is not null)
        {
            // The echoed trailers are already in context.ResponseTrailers, which the server sends with the status.
            throw new RpcException(new Status((StatusCode)int.Parse(code), FailMessage(context.RequestHeaders)));
        }
    }

    private static string FailMessage(Metadata headers) =>
        headers.GetValueBytes("x-fail-message-bin") is { } utf8
            ? System.Text.Encoding.UTF8.GetString(utf8)
            : headers.GetValue("x-fail-message") ?? string.Empty;

    private static ServiceDescriptor BuildDescriptor()
    {
        var file = new FileDescriptorProto { Name = "cp/test/echo.proto", Package = "cp.test", Syntax = "proto3" };
        file.Dependency.Add("google/protobuf/wrappers.proto");
        var service = new ServiceDescriptorProto { Name = "Echo" };
        void Add(string name, string input, string output, bool clientStreaming, bool serverStreaming) =>
            service.Method.Add(new MethodDescriptorProto
            {
                Name = name,
                InputType = ".google.protobuf." + input,
                OutputType = ".google.protobuf." + output,
                ClientStreaming = clientStreaming,
                ServerStreaming = serverStreaming,
            });
        Add("Unary", "BytesValue", "BytesValue", false, false);
        Add("ServerStream", "BytesValue", "BytesValue", false, true);
        Add("ClientStream", "BytesValue", "BytesValue", true, false);
        Add("Duplex", "BytesValue", "BytesValue", true, true);
        Add("Sleep", "BytesValue", "BytesValue", false, false);
        Add("WasCancelled", "StringValue", "BoolValue", false, false);
        file.Service.Add(service);
        var descriptor = FileDescriptor.FromGeneratedCode(
            file.ToByteArray(),
            [WrappersReflection.Descriptor],
            new GeneratedClrTypeInfo(null, null, null));
        return descriptor.Services[0];
    }
}
