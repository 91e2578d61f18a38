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
        await using var systemd = await FakeSystemd.StartAsync("cp-scheduler", Timeout, "dotnet", HostPath(), "--listen", $"127.0.0.1:{port}");

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
