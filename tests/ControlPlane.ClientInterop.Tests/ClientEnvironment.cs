using ControlPlane.Tests.Shared;
using System.Diagnostics;
using System.Reflection;

namespace ControlPlane.ClientInterop.Tests;

/// <summary>
/// Where the hosts and client scripts live and what the clients need: Debian's /usr/bin/python3 with grpcio
/// and grpc_tools, node with tests/node_modules. A missing prerequisite fails with the command that installs it.
/// </summary>
public static class ClientEnvironment
{
    public const string PythonPath = "/usr/bin/python3";

    public static string RepositoryRoot => TestEnvironment.RepositoryRoot;

    public static string PythonClient => Path.Combine(RepositoryRoot, "tests", "clients", "python", "hello_client.py");

    public static string NodeClient => Path.Combine(RepositoryRoot, "tests", "clients", "node", "hello_client.mjs");

    /// <summary>The scheduler host's executable (cp-scheduler), built with this test project.</summary>
    public static string SchedulerHost => HostPath("SchedulerHost");

    /// <summary>The agent host's executable (cp-agent), built with this test project.</summary>
    public static string AgentHost => HostPath("AgentHost");

    public static void RequirePython()
    {
        const string hint = "Install Debian's grpcio with its code generator: apt-get install -y python3-grpcio python3-grpc-tools python3-protobuf";
        if (!File.Exists(PythonPath))
        {
            throw new InvalidOperationException($"{PythonPath} is missing. {hint}");
        }

        var (exitCode, output) = TestEnvironment.RunQuick(PythonPath, "-c", "import grpc, grpc_tools.protoc, google.protobuf");
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"{PythonPath} cannot import grpc, grpc_tools or google.protobuf: {output.Trim()}. {hint}");
        }
    }

    public static void RequireNode()
    {
        var (exitCode, output) = TestEnvironment.RunQuick("node", "--version");
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"node is not runnable ({output.Trim()}). Install it: apt-get install -y nodejs npm");
        }

        foreach (var package in new[] { "@grpc/grpc-js", "@grpc/proto-loader" })
        {
            if (!File.Exists(Path.Combine(RepositoryRoot, "tests", "node_modules", package, "package.json")))
            {
                throw new InvalidOperationException(
                    $"tests/node_modules/{package} is missing. Install the test suite's npm packages: (cd {Path.Combine(RepositoryRoot, "tests")} && npm install --no-save)");
            }
        }
    }

    private static string HostPath(string key)
    {
        var path = typeof(ClientEnvironment).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;
        return File.Exists(path)
            ? path
            : throw new InvalidOperationException($"{path} does not exist. Build the solution first: dotnet build ControlPlane.sln");
    }
}
