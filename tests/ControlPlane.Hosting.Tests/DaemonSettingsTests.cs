namespace ControlPlane.Hosting.Tests;

public sealed class DaemonSettingsTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cp-settings-");

    public void Dispose() => _dir.Delete(recursive: true);

    private DaemonContext Context(Dictionary<string, string>? environment = null, TextWriter? output = null, TextWriter? error = null) =>
        new("testd", output ?? TextWriter.Null, error ?? TextWriter.Null, environment ?? [], _dir.FullName);

    private string WriteJson(string name, string json)
    {
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, json);
        return path;
    }

    private DaemonConfiguration<TestOptions> Load(string[] args, Dictionary<string, string>? environment = null) =>
        TestOptions.Table.Load(args, Context(environment));

    private SettingException LoadFails(string[] args, Dictionary<string, string>? environment = null) =>
        Assert.Throws<SettingException>(() => Load(args, environment));

    [Fact]
    public void Load_SameSettingFromJsonEnvironmentAndFlag_FlagWins()
    {
        var config = WriteJson("d.json", """{ "Slots": 3, "GracePeriod": "1m", "AgentId": "from-json" }""");
        var environment = new Dictionary<string, string> { ["CP_CONFIG"] = config, ["CP_SLOTS"] = "4", ["CP_GRACE_PERIOD"] = "2m" };

        var loaded = Load(["--slots", "5"], environment).Options;

        Assert.Equal(5, loaded.Slots);
        Assert.Equal(TimeSpan.FromMinutes(2), loaded.GracePeriod);
        Assert.Equal("from-json", loaded.Id);
    }

    [Fact]
    public void Load_ConfigFlagOverConfigVariable_FlagNamesTheFile()
    {
        var byFlag = WriteJson("flag.json", """{ "Slots": 7 }""");
        var byVariable = WriteJson("variable.json", """{ "Slots": 8 }""");

        var loaded = Load(["--config", byFlag], new() { ["CP_CONFIG"] = byVariable });

        Assert.Equal(7, loaded.Options.Slots);
        Assert.Equal(byFlag, loaded.ConfigFile);
    }

    [Fact]
    public void Load_FlagForms_EqualsSignAndSeparateValueAndBareSwitch()
    {
        var loaded = Load(["--slots=6", "--grace-period", "500ms", "--verbose", "--agent-id", "a-1"]).Options;

        Assert.Equal(6, loaded.Slots);
        Assert.Equal(TimeSpan.FromMilliseconds(500), loaded.GracePeriod);
        Assert.True(loaded.Verbose);
        Assert.Equal("a-1", loaded.Id);
    }

    [Fact]
    public void Load_NestedKeys_FlagEnvironmentAndJsonMergeIntoOneMap()
    {
        var config = WriteJson("d.json", """{ "Labels": { "team": "vision", "zone": "a" } }""");
        var environment = new Dictionary<string, string> { ["CP_CONFIG"] = config, ["CP_LABELS__ZONE"] = "b", ["CP_LABELS__GPU"] = "a100" };

        var labels = Load(["--labels__gpu", "h100", "--labels", "rack=r1,row=2"], environment).Options.Labels;

        Assert.Equal(
            new Dictionary<string, string> { ["team"] = "vision", ["zone"] = "b", ["gpu"] = "h100", ["rack"] = "r1", ["row"] = "2" },
            labels);
    }

    [Fact]
    public void Load_ListFromALaterSource_ReplacesTheWholeList()
    {
        var config = WriteJson("d.json", """{ "Queues": ["cpu", "gpu"] }""");

        var fromJson = Load([], new() { ["CP_CONFIG"] = config }).Options.Queues;
        var fromEnvironment = Load([], new() { ["CP_CONFIG"] = config, ["CP_QUEUES__0"] = "io" }).Options.Queues;
        var fromFlags = Load(["--queues", "a,b", "--queues", "c"], new() { ["CP_CONFIG"] = config, ["CP_QUEUES"] = "io" }).Options.Queues;

        Assert.Equal(["cpu", "gpu"], fromJson);
        Assert.Equal(["io"], fromEnvironment);
        Assert.Equal(["a", "b", "c"], fromFlags);
    }

    [Fact]
    public void Load_UnrelatedCpVariables_Ignored()
    {
        var loaded = Load([], new() { ["CP_TOKEN"] = "secret", ["CP_RUN_ID"] = "r-1", ["PATH"] = "/bin" });

        Assert.Equal(2, loaded.Options.Slots);
        Assert.Empty(loaded.Warnings);
    }

    [Fact]
    public void Load_DeprecatedNames_StillReadWithOneWarningEachNamingTheNewName()
    {
        var environment = new Dictionary<string, string> { ["CP_TEST__GRACEPERIOD"] = "00:00:07", ["CP_TEST__LABELS__TEAM"] = "vision" };

        var loaded = Load(["--id", "old-1", "--Test:Slots", "9", "--Test:Queues=a,b"], environment);

        Assert.Equal("old-1", loaded.Options.Id);
        Assert.Equal(9, loaded.Options.Slots);
        Assert.Equal(["a", "b"], loaded.Options.Queues);
        Assert.Equal(TimeSpan.FromSeconds(7), loaded.Options.GracePeriod);
        Assert.Equal("vision", loaded.Options.Labels["team"]);
        Assert.Equal(
            [
                "--id is deprecated and will be removed in the next release; use --agent-id",
                "--Test:Slots is deprecated and will be removed in the next release; use --slots",
                "--Test:Queues is deprecated and will be removed in the next release; use --queues",
                "CP_TEST__GRACEPERIOD is deprecated and will be removed in the next release; use CP_GRACE_PERIOD",
                "CP_TEST__LABELS__TEAM is deprecated and will be removed in the next release; use CP_LABELS__TEAM",
            ],
            loaded.Warnings);
    }

    [Fact]
    public void Load_NewNameBesideDeprecatedOne_NewNameWins()
    {
        var loaded = Load([], new() { ["CP_TEST__SLOTS"] = "3", ["CP_SLOTS"] = "4" });

        Assert.Equal(4, loaded.Options.Slots);
    }

    [Fact]
    public void Load_DeprecatedAppSettingsSection_ReadBelowTheConfigFileWithAWarning()
    {
        WriteJson("appsettings.json", """{ "Logging": { "LogLevel": { "Default": "Debug" } }, "Test": { "Slots": 3, "GracePeriod": "00:00:09", "Unknown": 1 } }""");
        var config = WriteJson("d.json", """{ "Slots": 4 }""");

        var loaded = Load(["--config", config]);

        Assert.Equal(4, loaded.Options.Slots);
        Assert.Equal(TimeSpan.FromSeconds(9), loaded.Options.GracePeriod);
        var warning = Assert.Single(loaded.Warnings);
        Assert.StartsWith($"section \"Test\" of {Path.Combine(_dir.FullName, "appsettings.json")} is deprecated", warning, StringComparison.Ordinal);
        Assert.Contains("--config PATH", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_UnknownFlag_FailsSuggestingTheClosestOne()
    {
        var ex = LoadFails(["--slot", "3"]);

        Assert.Equal("unknown flag --slot; did you mean --slots? testd --help lists every flag", ex.Message);
    }

    [Fact]
    public void Load_PositionalArgument_Fails()
    {
        var ex = LoadFails(["run"]);

        Assert.StartsWith("unexpected argument 'run'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_FlagWithoutValue_FailsShowingTheForm()
    {
        var ex = LoadFails(["--slots"]);

        Assert.Equal("--slots needs a value, e.g. --slots N", ex.Message);
    }

    [Fact]
    public void Load_BadValueFromEachSource_MessageNamesSettingFixAndSource()
    {
        var config = WriteJson("d.json", """{ "GracePeriod": 30 }""");

        var fromFlag = LoadFails(["--grace-period", "soon"]);
        var fromEnvironment = LoadFails([], new() { ["CP_GRACE_PERIOD"] = "soon" });
        var fromJson = LoadFails(["--config", config]);

        Assert.Equal("GracePeriod 'soon' is not a duration; write e.g. 500ms, 30s, 5m, 1h30m or 00:00:30 (from flag --grace-period)", fromFlag.Message);
        Assert.Equal("GracePeriod 'soon' is not a duration; write e.g. 500ms, 30s, 5m, 1h30m or 00:00:30 (from environment CP_GRACE_PERIOD)", fromEnvironment.Message);
        Assert.Equal($"GracePeriod '30' is not a duration; write e.g. 500ms, 30s, 5m, 1h30m or 00:00:30 (from JSON key GracePeriod in {config})", fromJson.Message);
        Assert.Equal("GracePeriod", fromFlag.Setting);
    }

    [Fact]
    public void Load_ValidationFails_MessageNamesWhereTheValueCameFrom()
    {
        var ex = LoadFails([], new() { ["CP_SLOTS"] = "0" });

        Assert.Equal("Slots is 0; set it between 1 and 100 (from environment CP_SLOTS)", ex.Message);
    }

    [Fact]
    public void Load_MapEntryWithoutEquals_Fails()
    {
        var ex = LoadFails(["--labels", "team"]);

        Assert.Equal("Labels entry 'team' is not key=value; write e.g. team=vision,gpu=a100 (from flag --labels)", ex.Message);
    }

    [Fact]
    public void Load_NestedKeyOnAScalar_Fails()
    {
        var ex = LoadFails(["--slots__a", "1"]);

        Assert.StartsWith("Slots takes a single value", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingConfigFile_FailsNamingTheFile()
    {
        var ex = LoadFails([], new() { ["CP_CONFIG"] = "/nonexistent/d.json" });

        Assert.Equal("Config file '/nonexistent/d.json' does not exist; give the path of a JSON settings file, or leave --config and CP_CONFIG unset (from environment CP_CONFIG)", ex.Message);
    }

    [Fact]
    public void Load_UnknownJsonKey_FailsListingTheKeys()
    {
        var config = WriteJson("d.json", """{ "Slot": 3 }""");

        var ex = LoadFails(["--config", config]);

        Assert.StartsWith("Slot is not a setting of testd; the keys are Scheduler, AgentId, Slots,", ex.Message, StringComparison.Ordinal);
        Assert.EndsWith($"(from JSON key Slot in {config})", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ConfigKeyInsideTheConfigFile_Fails()
    {
        var config = WriteJson("d.json", """{ "Config": "other.json" }""");

        var ex = LoadFails(["--config", config]);

        Assert.Equal($"Config cannot name a file from inside one; give the file with --config or CP_CONFIG only (from JSON key Config in {config})", ex.Message);
    }

    [Fact]
    public void Load_InvalidJson_FailsNamingTheFile()
    {
        var config = WriteJson("d.json", """{ "Slots": """);

        var ex = LoadFails(["--config", config]);

        Assert.StartsWith($"{config} is not valid JSON", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_JsonNestedTwoLevels_FailsSayingSettingsNestOneLevel()
    {
        var config = WriteJson("d.json", """{ "Labels": { "team": { "name": "vision" } } }""");

        var ex = LoadFails(["--config", config]);

        Assert.Contains("JSON key Labels:team", ex.Message, StringComparison.Ordinal);
        Assert.Contains("settings nest one level at most", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_JsonArrayAtTheRoot_FailsAskingForAnObject()
    {
        var config = WriteJson("d.json", """[ { "Slots": 4 } ]""");

        var ex = LoadFails(["--config", config]);

        Assert.Contains("must hold a JSON object of settings", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_JsonWithCommentsAndTrailingComma_Read()
    {
        var config = WriteJson("d.json", """
            {
              // a comment, as appsettings.json files have
              "Slots": 5,
              "Queues": ["gpu"],
            }
            """);

        var loaded = Load(["--config", config]).Options;

        Assert.Equal(5, loaded.Slots);
        Assert.Equal(["gpu"], loaded.Queues);
    }

    [Fact]
    public void TryLoad_BadValue_ExitCodeTwoAndOneErrorLine()
    {
        using var error = new StringWriter();

        var ok = TestOptions.Table.TryLoad(["--slots", "many"], Context(error: error), out _, out var exitCode);

        Assert.False(ok);
        Assert.Equal(2, exitCode);
        Assert.Equal("error: Slots 'many' is not a whole number; write it in digits, e.g. 8 (from flag --slots)" + Environment.NewLine, error.ToString());
    }

    [Fact]
    public void TryLoad_Help_ListsEveryFlagVariableAndJsonKeyThenExitsZero()
    {
        using var output = new StringWriter();

        var ok = TestOptions.Table.TryLoad(["--help"], Context(output: output), out _, out var exitCode);

        Assert.False(ok);
        Assert.Equal(0, exitCode);
        foreach (var setting in TestOptions.Table.Settings)
        {
            Assert.Contains(setting.Flag, output.ToString(), StringComparison.Ordinal);
            Assert.Contains(setting.EnvironmentVariable, output.ToString(), StringComparison.Ordinal);
            Assert.Contains(setting.Help, output.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void TryLoad_DeprecatedName_WarningLineOnStderr()
    {
        using var error = new StringWriter();

        var ok = TestOptions.Table.TryLoad(["--id", "x"], Context(error: error), out var configuration, out _);

        Assert.True(ok);
        Assert.Equal("x", configuration!.Options.Id);
        Assert.Equal("warning: --id is deprecated and will be removed in the next release; use --agent-id" + Environment.NewLine, error.ToString());
    }

    [Theory]
    [InlineData("LeaseDuration", "--lease-duration", "CP_LEASE_DURATION")]
    [InlineData("AgentId", "--agent-id", "CP_AGENT_ID")]
    [InlineData("TlsCert", "--tls-cert", "CP_TLS_CERT")]
    [InlineData("MaxReceiveMessageSize", "--max-receive-message-size", "CP_MAX_RECEIVE_MESSAGE_SIZE")]
    [InlineData("HTTPPort", "--http-port", "CP_HTTP_PORT")]
    public void Setting_Name_GivesFlagAndVariable(string name, string flag, string variable)
    {
        var setting = DaemonSetting<TestOptions>.Text(name, "X", "help", "none", (_, _) => { });

        Assert.Equal((flag, variable), (setting.Flag, setting.EnvironmentVariable));
    }

    [Fact]
    public void Settings_EveryDaemon_HasConfigFirstAndLogLevelLast()
    {
        Assert.Equal("--config", TestOptions.Table.Settings[0].Flag);
        Assert.Equal("CP_LOG_LEVEL", TestOptions.Table.Settings[^1].EnvironmentVariable);
    }

    [Fact]
    public void Load_LogLevel_ParsedForEveryDaemon()
    {
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, Load(["--log-level", "warning"]).LogLevel);
        Assert.Equal("LogLevel 'loud' is not a level; use Trace, Debug, Information, Warning, Error or Critical (from flag --log-level)", LoadFails(["--log-level", "loud"]).Message);
    }
}
