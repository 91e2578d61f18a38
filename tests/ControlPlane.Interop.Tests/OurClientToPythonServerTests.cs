namespace ControlPlane.Interop.Tests;

/// <summary>
/// ControlPlane.Rpc's client (ControlPlane.InteropClient) against Python grpcio's TestService server.
/// grpcio cannot tell a handler whether a request arrived compressed, so in client_compressed_unary
/// the client proves its compressed flags from the bytes it put on the wire instead of the probe.
/// </summary>
public sealed class OurClientToPythonServerTests(PythonInteropServerFixture server) : IClassFixture<PythonInteropServerFixture>
{
    [Theory]
    [MemberData(nameof(InteropEnvironment.CaseData), MemberType = typeof(InteropEnvironment))]
    public async Task RpcChannelClient_InteropCase_Passes(string testCase)
    {
        await InteropClientRun.AssertPassesAsync(
            server, testCase, "ControlPlane.InteropClient", InteropEnvironment.DotnetHost, InteropEnvironment.OurAssembly("ControlPlane.InteropClient"));
    }
}
