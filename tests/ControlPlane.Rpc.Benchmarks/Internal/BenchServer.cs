using System.Globalization;
using System.Net;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Testing;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Rpc.Benchmarks.Internal;

/// <summary>
/// The ControlPlane.Rpc server the benchmark measures: UnaryCall and FullDuplexCall with the same
/// minimal behaviour as tests/interop/bench_server.mjs, in its own process like the grpc-js one.
/// </summary>
internal static class BenchServer
{
    public static async Task<int> RunAsync(string[] args)
    {
        var portArg = args.FirstOrDefault(a => a.StartsWith("--port=", StringComparison.Ordinal));
        if (portArg is null || !int.TryParse(portArg["--port=".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var port))
        {
            await Console.Error.WriteLineAsync("serve: --port=N is required (0 picks a free port)");
            return 2;
        }

        var service = ServiceDefinition.For(TestReflection.Descriptor.FindTypeByName<ServiceDescriptor>("TestService"))
            .AddUnary<SimpleRequest, SimpleResponse>("UnaryCall", UnaryCall)
            .AddDuplexStreaming<StreamingOutputCallRequest, StreamingOutputCallResponse>("FullDuplexCall", FullDuplexCall)
            .Build();
        await using var server = RpcServer.Create(new RpcServerOptions(), service)
            .ListenH2c(IPAddress.Loopback, port)
            .ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        await server.StartAsync();
        Console.WriteLine($"listening on 127.0.0.1:{server.Addresses[0].Port}");

        var stop = new TaskCompletionSource();
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGTERM, context => { context.Cancel = true; stop.TrySetResult(); });
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.TrySetResult(); };
        await stop.Task;
        await server.StopAsync();
        return 0;
    }

    private static Task<SimpleResponse> UnaryCall(SimpleRequest request, ServerCallContext context) =>
        Task.FromResult(new SimpleResponse { Payload = Zeros(request.ResponseSize) });

    private static async Task FullDuplexCall(
        IAsyncStreamReader<StreamingOutputCallRequest> requests, IServerStreamWriter<StreamingOutputCallResponse> responses, ServerCallContext context)
    {
        while (await requests.MoveNext(context.CancellationToken))
        {
            foreach (var parameters in requests.Current.ResponseParameters)
            {
                await responses.WriteAsync(new StreamingOutputCallResponse { Payload = Zeros(parameters.Size) }, context.CancellationToken);
            }
        }
    }

    private static Payload Zeros(int size) => new() { Body = ByteString.CopyFrom(new byte[size]) };
}
