using ControlPlane.Tests.Shared;
using Xunit.Sdk;

namespace ControlPlane.Interop.Tests;

/// <summary>Runs one interop client process for one case and fails the test with its output unless it exits 0.</summary>
public static class InteropClientRun
{
    // Generous: a case takes well under a second, but CI machines may be slow to start runtimes.
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(90);

    public static async Task AssertPassesAsync(InteropServerFixture server, string testCase, string description, string fileName, params string[] arguments)
    {
        string[] standard = [$"--server_host=127.0.0.1", $"--server_port={server.Port}", $"--test_case={testCase}", "--use_tls=false"];
        await using var client = ObservedProcess.Start(description, fileName, InteropEnvironment.InteropDirectory, [.. arguments, .. standard]);
        var exitCode = await client.WaitForExitAsync(CaseTimeout);
        if (exitCode == 0 && client.Output.Contains($"PASS {testCase}", StringComparison.Ordinal))
        {
            return;
        }

        var outcome = exitCode is null ? $"did not finish within {CaseTimeout.TotalSeconds:0} s (killed)" : $"exited with code {exitCode}";
        throw new XunitException(
            $"{description} {testCase} {outcome}.\n--- client output ---\n{client.Output}--- server output ---\n{server.ServerOutput}");
    }
}
