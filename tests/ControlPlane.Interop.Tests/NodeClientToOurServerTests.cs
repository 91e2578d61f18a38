namespace ControlPlane.Interop.Tests;

/// <summary>@grpc/grpc-js's client (tests/interop/interop_client.mjs) against ControlPlane.Rpc's server.</summary>
public sealed class NodeClientToOurServerTests(OurInteropServerFixture server) : IClassFixture<OurInteropServerFixture>
{
    [Theory]
    [MemberData(nameof(InteropEnvironment.CaseData), MemberType = typeof(InteropEnvironment))]
    public async Task GrpcJsClient_InteropCase_Passes(string testCase)
    {
        InteropEnvironment.RequireNode();
        await InteropClientRun.AssertPassesAsync(server, testCase, "grpc-js interop_client.mjs", "node", "interop_client.mjs");
    }
}
