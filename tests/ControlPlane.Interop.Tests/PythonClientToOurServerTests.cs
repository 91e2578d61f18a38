namespace ControlPlane.Interop.Tests;

/// <summary>Python grpcio's client (tests/interop/interop_client.py) against ControlPlane.Rpc's server.</summary>
public sealed class PythonClientToOurServerTests(OurInteropServerFixture server) : IClassFixture<OurInteropServerFixture>
{
    [Theory]
    [MemberData(nameof(InteropEnvironment.CaseData), MemberType = typeof(InteropEnvironment))]
    public async Task PythonGrpcioClient_InteropCase_Passes(string testCase)
    {
        InteropEnvironment.RequirePython();
        await InteropClientRun.AssertPassesAsync(server, testCase, "grpcio interop_client.py", InteropEnvironment.PythonPath, "interop_client.py");
    }
}
