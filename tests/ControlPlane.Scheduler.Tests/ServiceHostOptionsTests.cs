using ControlPlane.Hosting;
using ControlPlane.Scheduler.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

public sealed class ServiceHostOptionsTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cp-host-");

    public void Dispose() => _dir.Delete(recursive: true);

    private DaemonContext Context(Dictionary<string, string>? environment = null, TextWriter? output = null, TextWriter? error = null) =>
        new("cp-scheduler", output ?? TextWriter.Null, error ?? TextWriter.Null, environment ?? [], _dir.FullName);

    private string WriteFile(string name, string text)
    {
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Load_JsonFileEnvironmentAndFlags_LaterSourcesWinAndDurationsParse()
    {
        var config = WriteFile("scheduler.json", """{ "Listen": "127.0.0.1:9100", "Namespace": "from-json", "LeaseDuration": "1m", "ClaimBatch": 7, "Reflection": false }""");
        var environment = new Dictionary<string, string>
        {
            ["CP_CONFIG"] = config,
            ["CP_LISTEN"] = "127.0.0.1:9000",
            ["CP_REDIS"] = "127.0.0.1:6379",
            ["CP_LEASE_DURATION"] = "1h30m",
        };

        var loaded = SchedulerHost.Settings.Load(["--listen", "127.0.0.1:0", "--heartbeat-interval=500ms", "--log-level", "warning"], Context(environment));

        Assert.Equal("127.0.0.1:0", loaded.Options.Listen);
        Assert.Equal("127.0.0.1:6379", loaded.Options.Redis);
        Assert.Equal("from-json", loaded.Options.Namespace);
        Assert.Equal(7, loaded.Options.ClaimBatch);
        Assert.False(loaded.Options.Reflection);
        Assert.Equal(TimeSpan.FromMinutes(90), loaded.Options.LeaseDuration);
        Assert.Equal(TimeSpan.FromMilliseconds(500), loaded.Options.HeartbeatInterval);
        Assert.Equal(LogLevel.Warning, loaded.LogLevel);
        Assert.Empty(loaded.Warnings);
    }

    [Fact]
    public void Load_DeprecatedAppSettingsSchedulerSection_StillReadWithAWarning()
    {
        WriteFile("appsettings.json", """{ "Scheduler": { "Namespace": "team-a", "ClaimBatch": 7, "LeaseDuration": "00:00:40" } }""");

        var loaded = SchedulerHost.Settings.Load([], Context());

        Assert.Equal("team-a", loaded.Options.Namespace);
        Assert.Equal(7, loaded.Options.ClaimBatch);
        Assert.Equal(TimeSpan.FromSeconds(40), loaded.Options.LeaseDuration);
        var warning = Assert.Single(loaded.Warnings);
        Assert.StartsWith("section \"Scheduler\" of ", warning, StringComparison.Ordinal);
        Assert.Contains("--config PATH or CP_CONFIG", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_UnknownFlag_FailsNamingTheClosestFlag()
    {
        var ex = Assert.Throws<SettingException>(() => SchedulerHost.Settings.Load(["--lisen", "x"], Context()));

        Assert.Equal("unknown flag --lisen; did you mean --listen? cp-scheduler --help lists every flag", ex.Message);
    }

    [Fact]
    public void Load_BadDuration_FailsNamingSettingFixAndFlag()
    {
        var ex = Assert.Throws<SettingException>(() => SchedulerHost.Settings.Load(["--lease-duration", "soon"], Context()));

        Assert.Equal("LeaseDuration 'soon' is not a duration; write e.g. 500ms, 30s, 5m, 1h30m or 00:00:30 (from flag --lease-duration)", ex.Message);
    }

    [Fact]
    public void Load_HeartbeatAboveHalfTheLeaseFromJson_FailsNamingTheJsonKey()
    {
        var config = WriteFile("scheduler.json", """{ "HeartbeatInterval": "20s" }""");

        var ex = Assert.Throws<SettingException>(() => SchedulerHost.Settings.Load(["--config", config], Context()));

        Assert.StartsWith("HeartbeatInterval (00:00:20) must be at most half of LeaseDuration (00:00:30)", ex.Message, StringComparison.Ordinal);
        Assert.EndsWith($"(from JSON key HeartbeatInterval in {config})", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Settings_Table_CoversEverySchedulerOptionsProperty()
    {
        var settable = typeof(SchedulerOptions).GetProperties().Where(p => p.CanWrite).Select(p => p.Name);

        Assert.Empty(settable.Except(SchedulerHost.Settings.Settings.Select(s => s.Property)));
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

    [Theory]
    [InlineData("6379")]
    [InlineData("localhost")]
    [InlineData("redis:0")]
    public void Validate_RedisWithoutPort_Refused(string redis)
    {
        var options = new SchedulerOptions { Redis = redis };

        var ex = Assert.Throws<ArgumentException>(options.Validate);

        Assert.StartsWith($"Redis '{redis}' is not HOST:PORT", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(nameof(SchedulerOptions.MaintenanceBatch))]
    [InlineData(nameof(SchedulerOptions.ReportBatch))]
    public void Validate_BatchBeyondOneAtomicStep_RefusedNamingTheSetting(string setting)
    {
        var options = new SchedulerOptions();
        typeof(SchedulerOptions).GetProperty(setting)!.SetValue(options, RunStoreOptions.MaxBatch + 1);

        var ex = Assert.Throws<ArgumentException>(options.Validate);

        Assert.StartsWith($"{setting} must be between 1 and {RunStoreOptions.MaxBatch}", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0s", 0)]
    [InlineData("48h", 48)]
    public void Load_DefaultRetention_ReachesTheStoreOptions(string flag, int hours)
    {
        var loaded = SchedulerHost.Settings.Load(["--default-retention", flag], Context());

        Assert.Equal(TimeSpan.FromHours(hours), loaded.Options.CreateStoreOptions().DefaultRetention);
        Assert.Equal(TimeSpan.FromDays(7), new SchedulerOptions().CreateStoreOptions().DefaultRetention);
    }

    [Fact]
    public void Load_AdminTokenFileFlagAndCpAdminTokenInTheEnvironment_TheFlagWins()
    {
        var file = WriteFile("admin.token", "cpt_from-file-0123456789abcdef\n");

        var loaded = SchedulerHost.Settings.Load(["--admin-token-file", file], Context(new Dictionary<string, string> { ["CP_ADMIN_TOKEN"] = "cpt_left-in-the-shell-0123456789" }));

        Assert.Equal(file, loaded.Options.AdminTokenFile);
        Assert.Null(loaded.Options.AdminToken);
    }

    [Fact]
    public void Load_AgentRetention_ReachesTheStoreOptions()
    {
        var loaded = SchedulerHost.Settings.Load(["--agent-retention", "2h"], Context());

        Assert.Equal(TimeSpan.FromHours(2), loaded.Options.CreateStoreOptions().AgentRetention);
        Assert.Equal(TimeSpan.FromHours(24), new SchedulerOptions().CreateStoreOptions().AgentRetention);
        Assert.StartsWith("AgentRetention must be positive", Assert.Throws<ArgumentException>(new SchedulerOptions { AgentRetention = TimeSpan.Zero }.Validate).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_DefaultRetentionOverTenYears_RefusedNamingTheSetting()
    {
        var ex = Assert.Throws<ArgumentException>(new SchedulerOptions { DefaultRetention = TimeSpan.FromDays(3651) }.Validate);

        Assert.StartsWith("DefaultRetention must be between 0", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RunStoreOptionsValidate_ReportBatchBeyondOneAtomicStep_Refused()
    {
        var ex = Assert.Throws<ArgumentException>(new RunStoreOptions { ReportBatch = RunStoreOptions.MaxBatch + 1 }.Validate);

        Assert.StartsWith($"ReportBatch must be at most {RunStoreOptions.MaxBatch}", ex.Message, StringComparison.Ordinal);
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

        var code = await SchedulerHost.RunAsync(["--namespace", "Bad Name!"], null, Context(output: output, error: error));

        Assert.Equal(SchedulerHost.InvalidConfigurationExitCode, code);
        var line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("error: Namespace 'Bad Name!' must match [a-z0-9][a-z0-9._-]{0,62}, e.g. \"default\" or \"team-a\" (from flag --namespace)", line);
        Assert.Empty(output.ToString());
    }

    [Fact]
    public async Task RunAsync_Help_ListsEverySettingAndExitsZero()
    {
        using var output = new StringWriter();

        var code = await SchedulerHost.RunAsync(["--help"], null, Context(output: output));

        Assert.Equal(0, code);
        foreach (var setting in SchedulerHost.Settings.Settings)
        {
            Assert.Contains($"{setting.Flag} {setting.ValueName}", output.ToString(), StringComparison.Ordinal);
            Assert.Contains(setting.EnvironmentVariable, output.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task RunAsync_StopTokenAlreadyFired_StopsCleanlyWithExitCodeZero()
    {
        using var output = new StringWriter();
        using var stop = new CancellationTokenSource();
        await stop.CancelAsync();

        var code = await SchedulerHost.RunAsync(["--listen", "127.0.0.1:0"], null, Context(output: output), stop.Token);

        Assert.Equal(0, code);
        Assert.Equal("scheduler stopped", output.ToString().Trim());
    }
}
