using System.Net;
using System.Net.Sockets;
using ControlPlane.Tests.Support;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

/// <summary>cp-scheduler as a real process, started the way systemd starts a Type=notify service.</summary>
public sealed class ServiceHostProcessTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task SchedulerHost_UnderSystemd_ReadyOnceListeningStoppingOnSigtermThenExitsZero()
    {
        var port = FreePort();
        await using var systemd = await FakeSystemd.StartAsync("cp-scheduler", Timeout, "dotnet", HostPath(), "--listen", $"127.0.0.1:{port}", "--http-listen", "127.0.0.1:0");

        await systemd.WaitForNotificationAsync("READY=1", Timeout);

        // READY=1 means the listener is bound: a connection made right after it is accepted.
        using (var client = new TcpClient())
        {
            await client.ConnectAsync(IPAddress.Loopback, port);
        }

        await systemd.TerminateDaemonAsync();
        await systemd.WaitForNotificationAsync("STOPPING=1", Timeout);
        var exitCode = await systemd.WaitForExitAsync(Timeout);

        Assert.True(exitCode == 0, $"exit code {exitCode}. Output:\n{systemd.Output}");
        Assert.Equal(["READY=1", "STOPPING=1"], systemd.Notifications);
        Assert.Contains("scheduler stopped", systemd.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SchedulerProcess_NoAdminToken_FirstLogLineSaysAuthenticationIsOff()
    {
        await using var scheduler = ObservedProcess.Start("cp-scheduler", "dotnet", [HostPath(), "--listen", "127.0.0.1:0"]);

        await scheduler.WaitForListeningAsync(Timeout);

        var first = scheduler.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0];
        Assert.Contains("Authentication is off", first, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0.0.0.0:0")]
    [InlineData("[::]:0")]
    public async Task SchedulerProcess_NonLoopbackWithoutTlsAndTokens_RefusedWithHowToFix(string listen)
    {
        await using var scheduler = ObservedProcess.Start("cp-scheduler", "dotnet", [HostPath(), "--listen", listen]);

        var exit = await scheduler.WaitForExitAsync(Timeout);

        Assert.Equal(2, exit);
        Assert.Contains("is not a loopback address", scheduler.StandardError, StringComparison.Ordinal);
        Assert.Contains("--insecure", scheduler.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SchedulerProcess_NonLoopbackWithInsecure_StartsAndWarns()
    {
        await using var scheduler = ObservedProcess.Start("cp-scheduler", "dotnet", [HostPath(), "--listen", "0.0.0.0:0", "--insecure"]);

        await scheduler.WaitForListeningAsync(Timeout);

        Assert.Contains("INSECURE: listening on 0.0.0.0:0", scheduler.StandardError, StringComparison.Ordinal);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string HostPath()
    {
        // tests/ControlPlane.Scheduler.Tests/bin/<Configuration>/net10.0/ -> src/ControlPlane.Scheduler.Host/bin/<Configuration>/net10.0/cp-scheduler.dll
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var path = Path.Combine(TestEnvironment.RepositoryRoot, "src", "ControlPlane.Scheduler.Host", "bin", testBin.Parent!.Name, testBin.Name, "cp-scheduler.dll");
        Assert.True(File.Exists(path), $"cp-scheduler not built at {path}; build tests/ControlPlane.Scheduler.Tests, which builds it");
        return path;
    }
}
