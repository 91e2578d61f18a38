using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using ControlPlane.Tests.Support;
using Xunit.Sdk;

namespace ControlPlane.ClientInterop.Tests;

/// <summary>
/// The Python (grpcio) and Node (@grpc/grpc-js) clients in tests/clients, with stubs generated from protos/,
/// run examples/hello.yaml against a real scheduler and agent: submit, watch every event, check join's output.
/// </summary>
public sealed partial class HelloClientTests(ControlPlaneHostsFixture hosts) : IClassFixture<ControlPlaneHostsFixture>
{
    // Generous: the run takes a few seconds, but a slow machine may take long to start python, node and protoc.
    private static readonly TimeSpan ClientTimeout = TimeSpan.FromSeconds(120);

    private static readonly string[] PartLines =
        ["part-a done after 3 planned parts", "part-b done after 3 planned parts", "part-c done after 3 planned parts"];

    [Fact]
    public async Task PythonHelloClient_SchedulerWithAgent_RunSucceedsWithJoinedPartOutputs()
    {
        await ClientEnvironment.RequirePythonAsync();
        await AssertHelloRunSucceedsAsync("python hello_client.py", ClientEnvironment.PythonPath, ClientEnvironment.PythonClient);
    }

    [Fact]
    public async Task NodeHelloClient_SchedulerWithAgent_RunSucceedsWithJoinedPartOutputs()
    {
        await ClientEnvironment.RequireNodeAsync();
        await AssertHelloRunSucceedsAsync("node hello_client.mjs", "node", ClientEnvironment.NodeClient);
    }

    [Fact]
    public async Task PythonHelloClient_NoSchedulerListening_ExitsNonZeroWithUnavailable()
    {
        await ClientEnvironment.RequirePythonAsync();
        await AssertFailsUnavailableAsync("python hello_client.py", ClientEnvironment.PythonPath, ClientEnvironment.PythonClient);
    }

    [Fact]
    public async Task NodeHelloClient_NoSchedulerListening_ExitsNonZeroWithUnavailable()
    {
        await ClientEnvironment.RequireNodeAsync();
        await AssertFailsUnavailableAsync("node hello_client.mjs", "node", ClientEnvironment.NodeClient);
    }

    private async Task AssertHelloRunSucceedsAsync(string description, string fileName, string script)
    {
        await using var client = ObservedProcess.Start(description, fileName, [script, "--scheduler", hosts.Target, "--google-protos", ClientEnvironment.GoogleProtos], ClientEnvironment.RepositoryRoot);
        var exitCode = await client.WaitForExitAsync(ClientTimeout);
        var output = client.Output;
        if (exitCode != 0 || !output.Contains("PASS: run ", StringComparison.Ordinal))
        {
            var outcome = exitCode is null ? $"did not finish within {ClientTimeout.TotalSeconds:0} s (killed)" : $"exited with code {exitCode}";
            throw new XunitException($"{description} {outcome}.\n--- client output ---\n{output}{hosts.HostOutput}");
        }

        foreach (var line in PartLines)
        {
            Assert.Contains(line, output, StringComparison.Ordinal);
        }

        // The run really went through the agent process: it logged taking the run's last step.
        var runId = SubmittedRun().Match(output).Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(runId), $"{description} did not print the submitted run's id:\n{output}");
        await hosts.Agent.WaitForLineAsync(l => l.Contains($"Assigned {runId}/join ", StringComparison.Ordinal), ClientTimeout, $"that it was assigned {runId}/join");
    }

    private static async Task AssertFailsUnavailableAsync(string description, string fileName, string script)
    {
        await using var client = ObservedProcess.Start(description, fileName, [script, "--scheduler", $"127.0.0.1:{ClosedPort()}", "--google-protos", ClientEnvironment.GoogleProtos], ClientEnvironment.RepositoryRoot);
        var exitCode = await client.WaitForExitAsync(ClientTimeout);
        var output = client.Output;
        Assert.True(exitCode is not null and not 0, $"{description} against a closed port should exit non-zero but {(exitCode is null ? "hung" : "exited 0")}:\n{output}");
        Assert.Contains("FAIL: UNAVAILABLE", output, StringComparison.Ordinal);
    }

    // A loopback port just released by a listener: nothing listens there, so connecting is refused.
    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    [GeneratedRegex(@"submitted run (\S+)")]
    private static partial Regex SubmittedRun();
}
