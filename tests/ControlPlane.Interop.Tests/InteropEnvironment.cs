using ControlPlane.Tests.Shared;
using System.Diagnostics;

namespace ControlPlane.Interop.Tests;

/// <summary>
/// Where the interop peers live and how to start them: our InteropServer/InteropClient builds,
/// Debian's /usr/bin/python3 with grpcio, node with tests/node_modules. A missing prerequisite
/// fails with the command that installs it.
/// </summary>
public static class InteropEnvironment
{
    public const string PythonPath = TestEnvironment.PythonPath;

    /// <summary>The 16 interop cases every direction runs.</summary>
    public static readonly string[] Cases =
    [
        "empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong", "empty_stream",
        "cancel_after_begin", "cancel_after_first_response", "timeout_on_sleeping_server", "custom_metadata",
        "status_code_and_message", "special_status_message", "unimplemented_method", "unimplemented_service",
        "client_compressed_unary", "server_compressed_unary",
    ];

    public static TheoryData<string> CaseData => new(Cases);

    public static string RepositoryRoot => TestEnvironment.RepositoryRoot;

    public static string InteropDirectory => Path.Combine(RepositoryRoot, "tests", "interop");

    /// <summary>The build configuration this test assembly was built with (bin/&lt;Configuration&gt;/net10.0).</summary>
    public static string Configuration =>
        new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent?.Name ?? "Debug";

    public static string DotnetHost =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    /// <summary>The built dll of one of our interop executables, e.g. "ControlPlane.InteropServer".</summary>
    public static string OurAssembly(string project)
    {
        var path = Path.Combine(RepositoryRoot, "tests", project, "bin", Configuration, "net10.0", project + ".dll");
        if (!File.Exists(path))
        {
            throw new InvalidOperationException(
                $"{path} does not exist. Build the solution first: dotnet build ControlPlane.sln -c {Configuration}");
        }

        return path;
    }

    public static void RequirePython() => TestEnvironment.RequirePython();

    public static void RequireNode() => TestEnvironment.RequireNode();

}
