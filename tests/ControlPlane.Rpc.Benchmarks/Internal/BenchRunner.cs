using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Testing;

namespace ControlPlane.Rpc.Benchmarks.Internal;

/// <summary>Runs every (workload, callers, client, server) line for several rounds and reports medians.</summary>
internal static class BenchRunner
{
    private const string Ours = "ControlPlane.Rpc";
    private const string GrpcJs = "grpc-js";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private static readonly ServiceDescriptor TestService = TestReflection.Descriptor.FindTypeByName<ServiceDescriptor>("TestService");
    private static readonly Method<SimpleRequest, SimpleResponse> UnaryCall =
        Method<SimpleRequest, SimpleResponse>.FromDescriptor(TestService.FindMethodByName("UnaryCall"));
    private static readonly Method<StreamingOutputCallRequest, StreamingOutputCallResponse> FullDuplexCall =
        Method<StreamingOutputCallRequest, StreamingOutputCallResponse>.FromDescriptor(TestService.FindMethodByName("FullDuplexCall"));

    public static async Task<int> RunAsync(BenchArguments arguments)
    {
        var interop = Path.Combine(FindRepositoryRoot(), "tests", "interop");
        if (!File.Exists(Path.Combine(interop, "..", "node_modules", "@grpc", "grpc-js", "package.json")))
        {
            await Console.Error.WriteLineAsync($"tests/node_modules/@grpc/grpc-js is missing; install it: (cd {Path.GetFullPath(Path.Combine(interop, ".."))} && npm ci)");
            return 2;
        }

        await using var ourServer = StartOurServer(interop);
        await using var jsServer = ChildProcess.Start("grpc-js bench_server.mjs", interop, "node", "bench_server.mjs", "--port=0");
        var ports = new Dictionary<string, int>
        {
            [Ours] = await ourServer.WaitForListeningAsync(StartTimeout),
            [GrpcJs] = await jsServer.WaitForListeningAsync(StartTimeout),
        };

        var clients = arguments.GrpcJsClient ? new[] { Ours, GrpcJs } : new[] { Ours };
        var samples = new Dictionary<(string Workload, int Callers, string Client, string Server), List<double>>();
        Console.WriteLine($"transport benchmark: {arguments.Rounds} rounds x {arguments.DurationSeconds}s (+{arguments.WarmupSeconds}s warm-up), payload {arguments.PayloadBytes} B, callers {string.Join(",", arguments.Callers)}");
        for (var round = 1; round <= arguments.Rounds; round++)
        {
            // Alternate which server goes first so drift on a shared machine hits both alike.
            var servers = round % 2 == 1 ? new[] { Ours, GrpcJs } : new[] { GrpcJs, Ours };
            foreach (var workload in new[] { "unary", "duplex" })
            {
                foreach (var callers in arguments.Callers)
                {
                    foreach (var client in clients)
                    {
                        foreach (var server in servers)
                        {
                            var rate = client == Ours
                                ? await MeasureOurClientAsync(ports[server], workload, callers, arguments)
                                : await MeasureGrpcJsClientAsync(interop, ports[server], workload, callers, arguments);
                            var key = (workload, callers, client, server);
                            if (!samples.TryGetValue(key, out var list))
                            {
                                samples[key] = list = new List<double>();
                            }

                            list.Add(rate);
                            Console.WriteLine(FormattableString.Invariant($"  round {round}: {workload,-6} callers={callers,-3} {client,-16} -> {server,-16} {rate,10:0}/s"));
                        }
                    }
                }
            }
        }

        BenchReport.Print(arguments, samples, Ours, GrpcJs);
        return 0;
    }

    private static ChildProcess StartOurServer(string interop)
    {
        var host = Environment.ProcessPath ?? "dotnet";
        var self = typeof(BenchRunner).Assembly.Location;
        return Path.GetFileNameWithoutExtension(host) == "dotnet"
            ? ChildProcess.Start("ControlPlane.Rpc bench server", interop, host, self, "serve", "--port=0")
            : ChildProcess.Start("ControlPlane.Rpc bench server", interop, host, "serve", "--port=0");
    }

    private static async Task<double> MeasureOurClientAsync(int port, string workload, int callers, BenchArguments arguments)
    {
        using var channel = RpcChannel.ForAddress($"http://127.0.0.1:{port}");
        var payload = new Payload { Body = ByteString.CopyFrom(new byte[arguments.PayloadBytes]) };
        long ops = 0;
        var stop = false;
        async Task UnaryLoop()
        {
            var request = new SimpleRequest { ResponseSize = arguments.PayloadBytes, Payload = payload };
            while (!Volatile.Read(ref stop))
            {
                using var call = channel.AsyncUnaryCall(UnaryCall, request);
                await call.ResponseAsync;
                Interlocked.Increment(ref ops);
            }
        }

        async Task DuplexLoop()
        {
            var request = new StreamingOutputCallRequest { Payload = payload, ResponseParameters = { new ResponseParameters { Size = arguments.PayloadBytes } } };
            using var call = channel.AsyncDuplexStreamingCall(FullDuplexCall);
            while (!Volatile.Read(ref stop))
            {
                await call.RequestStream.WriteAsync(request);
                if (!await call.ResponseStream.MoveNext(CancellationToken.None))
                {
                    throw new InvalidOperationException($"the duplex stream ended early with {call.GetStatus()}");
                }

                Interlocked.Increment(ref ops);
            }

            await call.RequestStream.CompleteAsync();
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
            }
        }

        var loops = Enumerable.Range(0, callers).Select(_ => Task.Run(workload == "unary" ? UnaryLoop : DuplexLoop)).ToArray();
        var all = Task.WhenAll(loops);
        await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(arguments.WarmupSeconds)));
        var start = Interlocked.Read(ref ops);
        var clock = Stopwatch.StartNew();
        await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(arguments.DurationSeconds)));
        var counted = Interlocked.Read(ref ops) - start;
        var seconds = clock.Elapsed.TotalSeconds;
        Volatile.Write(ref stop, true);
        await all; // Surfaces any call failure instead of reporting a rate for a broken run.
        return counted / seconds;
    }

    private static async Task<double> MeasureGrpcJsClientAsync(string interop, int port, string workload, int callers, BenchArguments arguments)
    {
        var inv = CultureInfo.InvariantCulture;
        await using var client = ChildProcess.Start(
            "grpc-js bench_client.mjs", interop, "node", "bench_client.mjs",
            $"--port={port}", $"--workload={workload}", $"--callers={callers}",
            $"--duration={arguments.DurationSeconds.ToString(inv)}", $"--warmup={arguments.WarmupSeconds.ToString(inv)}", $"--payload={arguments.PayloadBytes}");
        var limit = TimeSpan.FromSeconds(arguments.DurationSeconds + arguments.WarmupSeconds + 60);
        if (!await client.WaitForExitAsync(limit) || client.ExitCode != 0)
        {
            throw new InvalidOperationException($"bench_client.mjs failed or did not finish within {limit.TotalSeconds:0} s. Output:\n{client.Output}");
        }

        using var result = JsonDocument.Parse(client.LastStdoutLine);
        return result.RootElement.GetProperty("ops").GetDouble() / result.RootElement.GetProperty("seconds").GetDouble();
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ControlPlane.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No ControlPlane.sln above {AppContext.BaseDirectory}; run the benchmark from its build output in the repository.");
    }
}
