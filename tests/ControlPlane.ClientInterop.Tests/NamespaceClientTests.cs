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
        var output = await ClientEnvironment.RunPythonClientAsync(hosts, ClientEnvironment.PythonNamespaceClient, ClientTimeout);

        Assert.Contains("listed in py-", output, StringComparison.Ordinal);
        Assert.Contains("error info ERROR_REASON_NAMESPACE_NOT_FOUND namespace=py-", output, StringComparison.Ordinal);
    }
}
