using ControlPlane.Tests.Shared;
namespace ControlPlane.Interop.Tests;

/// <summary>Our ControlPlane.InteropServer (ControlPlane.Rpc's server).</summary>
public sealed class OurInteropServerFixture : InteropServerFixture
{
    protected override ObservedProcess StartServer() =>
        ObservedProcess.Start(
            "ControlPlane.InteropServer",
            InteropEnvironment.DotnetHost,
            InteropEnvironment.InteropDirectory,
            InteropEnvironment.OurAssembly("ControlPlane.InteropServer"),
            "--port=0");
}
