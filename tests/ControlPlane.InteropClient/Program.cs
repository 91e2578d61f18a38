using ControlPlane.InteropClient.Internal;
using ControlPlane.Rpc;

// The gRPC interop test client on ControlPlane.Rpc's RpcChannel.
// Usage: ControlPlane.InteropClient --server_host=127.0.0.1 --server_port=N --test_case=NAME [--use_tls=false]
// Exit code 0 when the case passes; 1 with "FAIL <case>: <what differed>" otherwise; 2 on bad arguments.
if (!ClientArguments.TryParse(args, out var arguments, out var error))
{
    await Console.Error.WriteLineAsync(error);
    return 2;
}

try
{
    await InteropCases.RunAsync(arguments);
    Console.WriteLine($"PASS {arguments.TestCase}");
    return 0;
}
catch (InteropFailureException failure)
{
    Console.WriteLine($"FAIL {arguments.TestCase}: {failure.Message}");
    return 1;
}
catch (RpcException rpc)
{
    Console.WriteLine($"FAIL {arguments.TestCase}: unexpected RPC error {rpc.StatusCode}: \"{rpc.Status.Detail}\"\n{rpc}");
    return 1;
}
catch (Exception unexpected)
{
    Console.WriteLine($"FAIL {arguments.TestCase}: {unexpected}");
    return 1;
}
