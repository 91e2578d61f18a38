using System.Runtime.CompilerServices;

namespace ControlPlane.Rpc.Tests;

/// <summary>Finds the peer scripts next to the test sources.</summary>
internal static class ClientPeerPaths
{
    public static string GrpcioEchoServer => Find("grpcio_echo_server.py");

    private static string Find(string name, [CallerFilePath] string sourceFile = "")
    {
        var candidate = Path.Combine(Path.GetDirectoryName(sourceFile)!, "peers", name);
        return File.Exists(candidate)
            ? candidate
            : throw new FileNotFoundException($"The peer script {candidate} is missing; run the tests from the repository checkout.");
    }
}
