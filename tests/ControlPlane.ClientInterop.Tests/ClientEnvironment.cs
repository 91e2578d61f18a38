using System.Reflection;
using ControlPlane.Tests.Support;

namespace ControlPlane.ClientInterop.Tests;

/// <summary>
/// Where the hosts and client scripts live and what the clients need: Debian's /usr/bin/python3 with grpcio
/// and grpc_tools, node with tests/node_modules. A missing prerequisite fails with the command that installs it.
/// </summary>
public static class ClientEnvironment
{
    public const string PythonPath = TestEnvironment.PythonPath;

    public static string RepositoryRoot => TestEnvironment.RepositoryRoot;

    public static string PythonClient => Path.Combine(RepositoryRoot, "tests", "clients", "python", "hello_client.py");

    public static string NodeClient => Path.Combine(RepositoryRoot, "tests", "clients", "node", "hello_client.mjs");

    public static string PythonErrorDetailsClient => Path.Combine(RepositoryRoot, "tests", "clients", "python", "error_details_client.py");

    public static string PythonNamespaceClient => Path.Combine(RepositoryRoot, "tests", "clients", "python", "namespace_client.py");

    /// <summary>The google/rpc .proto files of the Google.Api.CommonProtos package, restored with this test project.</summary>
    public static string GoogleProtos
    {
        get
        {
            var path = typeof(ClientEnvironment).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "GoogleProtos").Value!;
            return File.Exists(Path.Combine(path, "google", "rpc", "error_details.proto"))
                ? path
                : throw new InvalidOperationException($"{path}/google/rpc/error_details.proto is missing; restore the solution first: dotnet restore ControlPlane.sln");
        }
    }

    /// <summary>The scheduler host's executable (cp-scheduler), built with this test project.</summary>
    public static string SchedulerHost => HostPath("SchedulerHost");

    /// <summary>The agent host's executable (cp-agent), built with this test project.</summary>
    public static string AgentHost => HostPath("AgentHost");

    public static Task RequirePythonAsync() => TestEnvironment.RequirePythonAsync();

    /// <summary>
    /// Runs a Python client script against <paramref name="hosts"/> with the google/rpc protos it compiles, and returns
    /// its output; fails the test with the output of the client and of the hosts unless it exits 0 saying "PASS: ".
    /// </summary>
    public static async Task<string> RunPythonClientAsync(ControlPlaneHostsFixture hosts, string script, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(hosts);
        await RequirePythonAsync();
        await using var client = ObservedProcess.Start(
            "python " + Path.GetFileName(script),
            PythonPath,
            [script, "--scheduler", hosts.Target, "--google-protos", GoogleProtos],
            RepositoryRoot);

        var exitCode = await client.WaitForExitAsync(timeout);

        var output = client.Output;
        if (exitCode != 0 || !output.Contains("PASS: ", StringComparison.Ordinal))
        {
            throw new Xunit.Sdk.XunitException($"the Python client exited with {exitCode?.ToString() ?? "nothing (killed)"}.\n--- client output ---\n{output}{hosts.HostOutput}");
        }

        return output;
    }

    public static Task RequireNodeAsync() => TestEnvironment.RequireNodeAsync();

    private static string HostPath(string key)
    {
        var path = typeof(ClientEnvironment).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;
        return File.Exists(path)
            ? path
            : throw new InvalidOperationException($"{path} does not exist. Build the solution first: dotnet build ControlPlane.sln");
    }
}
