using ControlPlane.Tests.Support;
using Xunit.Sdk;

namespace ControlPlane.ClientInterop.Tests;

/// <summary>
/// A Python grpcio client picks the namespace of each call with the cp-namespace metadata entry, against a real
/// scheduler process with authentication off: its run is listed there only, and an unknown namespace is NOT_FOUND.
/// </summary>
public sealed class NamespaceClientTests(ControlPlaneHostsFixture hosts) : IClassFixture<ControlPlaneHostsFixture>
{
    private static readonly TimeSpan ClientTimeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task PythonClient_CpNamespaceMetadata_SubmitsListsAndCancelsInItsNamespaceOnly()
    {
        await ClientEnvironment.RequirePythonAsync();
        await using var client = ObservedProcess.Start(
            "python namespace_client.py",
            ClientEnvironment.PythonPath,
            [ClientEnvironment.PythonNamespaceClient, "--scheduler", hosts.Target, "--google-protos", ClientEnvironment.GoogleProtos],
            ClientEnvironment.RepositoryRoot);

        var exitCode = await client.WaitForExitAsync(ClientTimeout);

        var output = client.Output;
        if (exitCode != 0 || !output.Contains("PASS: ", StringComparison.Ordinal))
        {
            throw new XunitException($"the Python client exited with {exitCode?.ToString() ?? "nothing (killed)"}.\n--- client output ---\n{output}{hosts.HostOutput}");
        }

        Assert.Contains("listed in py-", output, StringComparison.Ordinal);
        Assert.Contains("error info ERROR_REASON_NAMESPACE_NOT_FOUND namespace=py-", output, StringComparison.Ordinal);
    }
}
