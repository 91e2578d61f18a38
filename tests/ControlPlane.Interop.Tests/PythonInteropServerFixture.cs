using ControlPlane.Tests.Shared;
namespace ControlPlane.Interop.Tests;

/// <summary>The Python grpcio TestService server (tests/interop/interop_server.py).</summary>
public sealed class PythonInteropServerFixture : InteropServerFixture
{
    protected override ObservedProcess StartServer()
    {
        InteropEnvironment.RequirePython();
        return ObservedProcess.Start(
            "grpcio interop_server.py",
            InteropEnvironment.PythonPath,
            InteropEnvironment.InteropDirectory,
            "interop_server.py",
            "--port=0");
    }
}
