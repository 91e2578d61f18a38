using System.Collections;
using ControlPlane.Scheduler.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

public sealed class ServiceHostOptionsTests
{
    private static readonly string NoAppSettings = Path.Combine(Path.GetTempPath(), "cp-no-appsettings-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public void Load_FlagsOverEnvironment_FlagsWinAndDurationsParse()
    {
        var env = new Hashtable { ["CP_LISTEN"] = "127.0.0.1:9000", ["CP_REDIS"] = "127.0.0.1:6379", ["CP_LEASE_DURATION"] = "12s" };

        var (options, level) = SchedulerHost.Load(["--listen", "127.0.0.1:0", "--heartbeat-interval=500ms", "--log-level", "warning"], env, NoAppSettings);

        Assert.Equal("127.0.0.1:0", options.Listen);
        Assert.Equal("127.0.0.1:6379", options.Redis);
        Assert.Equal(TimeSpan.FromSeconds(12), options.LeaseDuration);
        Assert.Equal(TimeSpan.FromMilliseconds(500), options.HeartbeatInterval);
        Assert.Equal(LogLevel.Warning, level);
    }

    [Fact]
    public void Load_AppSettingsFile_ReadUnderSchedulerSection()
    {
        var dir = Directory.CreateTempSubdirectory("cp-host-");
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "appsettings.json"), """{ "Scheduler": { "Namespace": "team-a", "ClaimBatch": 7 } }""");

            var (options, _) = SchedulerHost.Load([], new Hashtable(), dir.FullName);

            Assert.Equal("team-a", options.Namespace);
            Assert.Equal(7, options.ClaimBatch);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Load_UnknownFlag_ArgumentExceptionListingKnownFlags()
    {
        var ex = Assert.Throws<ArgumentException>(() => SchedulerHost.Load(["--lisen", "x"], new Hashtable(), NoAppSettings));

        Assert.Contains("unknown flag '--lisen'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("--listen", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_BadDuration_ArgumentExceptionNamingSettingAndFlag()
    {
        var ex = Assert.Throws<ArgumentException>(() => SchedulerHost.Load(["--lease-duration", "soon"], new Hashtable(), NoAppSettings));

        Assert.Contains("LeaseDuration 'soon'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("--lease-duration", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("nohost", "has no port")]
    [InlineData("example.com:80", "not an IP address")]
    [InlineData("127.0.0.1:99999", "invalid port")]
    public void Validate_BadListen_MessageSaysHowToFix(string listen, string expected)
    {
        var options = new SchedulerOptions { Listen = listen };

        var ex = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Contains("HOST:PORT", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_HeartbeatLongerThanHalfTheLease_Refused()
    {
        var options = new SchedulerOptions { LeaseDuration = TimeSpan.FromSeconds(10), HeartbeatInterval = TimeSpan.FromSeconds(6) };

        var ex = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Contains("HeartbeatInterval", ex.Message, StringComparison.Ordinal);
        Assert.Contains("half of LeaseDuration", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_InvalidFlag_ExitCode2AndOneLineOnStderr()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();

        var code = await SchedulerHost.RunAsync(["--namespace", "Bad Name!"], null, output, error);

        Assert.Equal(SchedulerHost.InvalidConfigurationExitCode, code);
        var line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("scheduler: invalid configuration: Namespace 'Bad Name!'", line, StringComparison.Ordinal);
    }
}
