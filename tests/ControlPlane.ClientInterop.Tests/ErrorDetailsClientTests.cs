namespace ControlPlane.ClientInterop.Tests;

/// <summary>
/// A Python grpcio client reads the scheduler's rich error details from the protos alone: every field violation of
/// an invalid spec (google.rpc.BadRequest) and the reason of a NOT_FOUND (google.rpc.ErrorInfo).
/// </summary>
public sealed class ErrorDetailsClientTests(ControlPlaneHostsFixture hosts) : IClassFixture<ControlPlaneHostsFixture>
{
    private static readonly TimeSpan ClientTimeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task PythonClient_InvalidSpecAndUnknownRun_ReadsBadRequestAndErrorInfo()
    {
        var output = await ClientEnvironment.RunPythonClientAsync(hosts, ClientEnvironment.PythonErrorDetailsClient, ClientTimeout);

        Assert.Contains("violation steps[0].framework: ", output, StringComparison.Ordinal);
        Assert.Contains("violation steps[1].needs[1]: ", output, StringComparison.Ordinal);
        Assert.Contains("error info controlplane.v1 ERROR_REASON_RUN_NOT_FOUND run_id=no-such-run", output, StringComparison.Ordinal);
    }
}
