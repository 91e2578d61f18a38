using ControlPlane.Rpc.Benchmarks.Internal;

// Transport benchmark: ControlPlane.Rpc's client against ControlPlane.Rpc's server and against a
// @grpc/grpc-js server, side by side, over loopback. Not a test; prints a table and a JSON line.
//   ControlPlane.Rpc.Benchmarks [--rounds=5] [--duration=3] [--warmup=1] [--payload=100] [--callers=1,64] [--grpc-js-client=true]
//   ControlPlane.Rpc.Benchmarks serve --port=N     (the benchmark's own server process)
if (args.Length > 0 && args[0] == "serve")
{
    return await BenchServer.RunAsync(args[1..]);
}

if (!BenchArguments.TryParse(args, out var arguments, out var error))
{
    await Console.Error.WriteLineAsync(error);
    return 2;
}

return await BenchRunner.RunAsync(arguments);
