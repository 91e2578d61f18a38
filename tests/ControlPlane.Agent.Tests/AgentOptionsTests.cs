using ControlPlane.Hosting;

namespace ControlPlane.Agent.Tests;

public sealed class AgentOptionsTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private DaemonContext Context(Dictionary<string, string>? environment = null) =>
        new("cp-agent", TextWriter.Null, TextWriter.Null, environment ?? [], _dir.Path);

    private DaemonConfiguration<AgentOptions> Load(string[] args, Dictionary<string, string>? environment = null) =>
        AgentHostBuilder.Settings.Load(args, Context(environment));

    private string WriteFile(string name, string text)
    {
        var path = Path.Combine(_dir.Path, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Validate_Defaults_Pass()
    {
        var options = new AgentOptions();

        options.Validate();

        Assert.Equal(["default"], options.Queues);
        Assert.Equal(Environment.ProcessorCount, options.Slots);
    }

    [Fact]
    public void Load_MetricsListenFromEnvironment_ServesThatAddressAndAnUnspecifiedOneListensEverywhere()
    {
        var options = Load([], new Dictionary<string, string> { ["CP_METRICS_LISTEN"] = "0.0.0.0:9464" }).Options;

        Assert.Equal("0.0.0.0:9464", options.MetricsListen);
        Assert.Equal(("+", 9464), ControlPlane.Agent.Internal.AgentMetrics.Parse(options.MetricsListen!));
        Assert.Equal(("127.0.0.1", 9464), ControlPlane.Agent.Internal.AgentMetrics.Parse("127.0.0.1:9464"));
        Assert.Equal(("+", 9464), ControlPlane.Agent.Internal.AgentMetrics.Parse("[::]:9464"));
        Assert.True(ControlPlane.Agent.Internal.AgentMetrics.IsLoopback("localhost:9464"));
        Assert.False(ControlPlane.Agent.Internal.AgentMetrics.IsLoopback("0.0.0.0:9464"));
    }

    [Theory]
    [InlineData("9464")]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.1:70000")]
    [InlineData("::1:9464")]
    [InlineData("[::1]:9464")]
    public void Validate_MetricsListenNotHostAndPort_SaysHowToSetIt(string listen)
    {
        var options = new AgentOptions { MetricsListen = listen };

        var error = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Equal(nameof(AgentOptions.MetricsListen), error.ParamName);
        Assert.Contains("127.0.0.1:9464", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_TokenFileFlagAndCpTokenInTheEnvironment_TheFlagWins()
    {
        var file = WriteFile("agent.token", "cpt_from-file-0123456789\n");

        var options = Load(["--token-file", file], new Dictionary<string, string> { ["CP_TOKEN"] = "cpt_the-admins-for-cpctl-0123" }).Options;

        Assert.Equal(file, options.TokenFile);
        Assert.Null(options.Token);
    }

    [Fact]
    public void Load_TokenAndTokenFileBothFromTheEnvironment_RefusedNamingBoth()
    {
        var file = WriteFile("agent.token", "cpt_from-file-0123456789\n");

        var ex = Assert.Throws<SettingException>(() => Load([], new Dictionary<string, string> { ["CP_TOKEN"] = "cpt_from-env-0123456789", ["CP_TOKEN_FILE"] = file }));

        Assert.Contains("Token and TokenFile are both set", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_TokenFromEnvironmentOrFile_ReadTheSameWay()
    {
        var file = WriteFile("agent.token", "cpt_from-file-0123456789\n");

        var fromEnvironment = Load([], new Dictionary<string, string> { ["CP_TOKEN"] = "cpt_from-env-0123456789" }).Options;
        var fromFile = Load(["--token-file", file]).Options;

        Assert.Equal("cpt_from-env-0123456789", fromEnvironment.ReadToken());
        Assert.Equal("cpt_from-file-0123456789", fromFile.ReadToken());
        Assert.Null(new AgentOptions().ReadToken());
    }

    [Fact]
    public void Load_NamespaceFromFlagEnvironmentOrJson_SameNamespace()
    {
        var config = WriteFile("agent.json", """{ "Namespace": "team-json" }""");

        var fromFlag = Load(["--namespace", "team-flag"]).Options;
        var fromEnvironment = Load([], new Dictionary<string, string> { ["CP_NAMESPACE"] = "team-env" }).Options;
        var fromJson = Load(["--config", config]).Options;

        Assert.Equal("team-flag", fromFlag.Namespace);
        Assert.Equal("team-env", fromEnvironment.Namespace);
        Assert.Equal("team-json", fromJson.Namespace);
        Assert.Null(new AgentOptions().Namespace);
    }

    [Theory]
    [InlineData("")]
    [InlineData("Team-A")]
    [InlineData("*")]
    [InlineData("_team")]
    [InlineData("a234567890123456789012345678901234567890123456789012345678901234")]
    public void Validate_BadNamespace_NamesThePatternAndTheSetting(string value)
    {
        var ex = Assert.Throws<ArgumentException>(new AgentOptions { Namespace = value }.Validate);

        Assert.Equal(nameof(AgentOptions.Namespace), ex.ParamName);
        Assert.StartsWith($"Namespace '{value}' must match [a-z0-9][a-z0-9._-]{{0,62}}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_BadNamespaceFlag_FailsNamingTheFlag()
    {
        var ex = Assert.ThrowsAny<Exception>(() => Load(["--namespace", "Team A"]));

        Assert.Contains("--namespace", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[a-z0-9][a-z0-9._-]{0,62}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_TokenFileMissing_NamesTheFileAndHowToMakeOne()
    {
        var ex = Assert.Throws<ArgumentException>(new AgentOptions { TokenFile = Path.Combine(_dir.Path, "nope.token") }.Validate);

        Assert.Contains("TokenFile", ex.Message, StringComparison.Ordinal);
        Assert.Contains("cpctl auth token create --role agent", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_SeveralBadSettings_ReportsEachWithItsFix()
    {
        var options = new AgentOptions { SchedulerAddress = "127.0.0.1:7070", AgentId = "Bad Id", Slots = 0, Queues = ["ok", "Not OK"] };

        var ex = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Contains("SchedulerAddress '127.0.0.1:7070'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("http://127.0.0.1:7070", ex.Message, StringComparison.Ordinal);
        Assert.Contains("AgentId 'Bad Id'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Slots is 0", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'Not OK'", ex.Message, StringComparison.Ordinal);
        Assert.Equal(nameof(AgentOptions.SchedulerAddress), ex.ParamName);
    }

    [Fact]
    public void Validate_CertWithoutKey_SaysTheyGoTogether()
    {
        var options = new AgentOptions { CertFile = WriteFile("client.pem", "x") };

        var ex = Assert.Throws<ArgumentException>(options.Validate);

        Assert.StartsWith("CertFile and KeyFile go together: give both PEM files (the client certificate and its private key), or neither.", ex.Message, StringComparison.Ordinal);
        Assert.Equal(nameof(AgentOptions.KeyFile), ex.ParamName);
    }

    [Fact]
    public void Load_CaThatIsNoCertificate_NamesTheFlag()
    {
        var ca = WriteFile("ca.pem", "not a certificate");

        var ex = Assert.ThrowsAny<Exception>(() => Load(["--ca", ca]));

        Assert.Contains("--ca", ex.Message, StringComparison.Ordinal);
        Assert.Contains("holds no certificate", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Build-Box_01.example.com", "build-box_01.example.com")]
    [InlineData("host name!", "host-name-")]
    [InlineData("--lead", "lead")]
    [InlineData("", "agent")]
    public void SanitizeAgentId_HostNames_BecomeValidIds(string host, string expected)
    {
        Assert.Equal(expected, AgentOptions.SanitizeAgentId(host));
    }

    [Fact]
    public void SanitizeAgentId_LongName_CutTo63()
    {
        Assert.Equal(63, AgentOptions.SanitizeAgentId(new string('a', 100)).Length);
    }

    [Fact]
    public void Load_CommaSeparatedFlags_SplitIntoQueuesAndLabels()
    {
        var options = Load(["--queues", "gpu,default", "--labels", "team=vision,zone=a", "--slots", "3", "--heartbeat-interval", "2s", "--agent-id", "gpu-1"]).Options;

        Assert.Equal(["gpu", "default"], options.Queues);
        Assert.Equal(new Dictionary<string, string> { ["team"] = "vision", ["zone"] = "a" }, options.Labels);
        Assert.Equal(3, options.Slots);
        Assert.Equal(TimeSpan.FromSeconds(2), options.HeartbeatInterval);
        Assert.Equal("gpu-1", options.AgentId);
    }

    [Fact]
    public void Load_LabelFromFlagEnvironmentOrJson_SameLabel()
    {
        var config = WriteFile("agent.json", """{ "Labels": { "team": "vision" } }""");

        var fromFlag = Load(["--labels__team", "vision"]).Options.Labels;
        var fromEnvironment = Load([], new() { ["CP_LABELS__TEAM"] = "vision" }).Options.Labels;
        var fromJson = Load(["--config", config]).Options.Labels;

        Assert.All([fromFlag, fromEnvironment, fromJson], labels => Assert.Equal(new Dictionary<string, string> { ["team"] = "vision" }, labels));
    }

    [Fact]
    public void Load_SchedulerRepeatedAndCommaSeparated_ListsEveryAddressInOrder()
    {
        var options = Load(["--scheduler", "http://a:7070", "--scheduler", "http://b:7070, http://c:7070"]).Options;

        Assert.Equal(["http://a:7070", "http://b:7070", "http://c:7070"], options.SchedulerAddresses);
        Assert.Empty(options.FindProblems());
    }

    [Fact]
    public void Validate_OneOfSeveralSchedulerAddressesInvalid_NamesIt()
    {
        var options = new AgentOptions { SchedulerAddress = "http://a:7070,b:7070", AgentId = "agent-1", Slots = 1 };

        var ex = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Contains("SchedulerAddress 'b:7070'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_JsonEnvironmentAndFlags_LaterSourcesWin()
    {
        var config = WriteFile("agent.json", """{ "Scheduler": "http://json:7070", "AgentId": "json-1", "Slots": 2, "ShutdownGracePeriod": "1m", "KeepWorkDirectories": true }""");
        var environment = new Dictionary<string, string> { ["CP_CONFIG"] = config, ["CP_SCHEDULER"] = "http://env:7070", ["CP_AGENT_ID"] = "env-1" };

        var options = Load(["--agent-id", "flag-1"], environment).Options;

        Assert.Equal("http://env:7070", options.SchedulerAddress);
        Assert.Equal("flag-1", options.AgentId);
        Assert.Equal(2, options.Slots);
        Assert.Equal(TimeSpan.FromMinutes(1), options.ShutdownGracePeriod);
        Assert.True(options.KeepWorkDirectories);
    }

    [Fact]
    public void Load_DeprecatedNames_StillReadWithAWarningNamingEachNewName()
    {
        WriteFile("appsettings.json", """{ "Agent": { "SchedulerAddress": "http://old:7070", "Queues": ["gpu"] }, "Logging": { "LogLevel": { "Default": "Information" } } }""");
        var environment = new Dictionary<string, string> { ["CP_AGENT__SLOTS"] = "3", ["CP_AGENT__LABELS__TEAM"] = "vision" };

        var loaded = Load(["--id", "old-1", "--Agent:MaxReconnectDelay", "00:00:01"], environment);

        Assert.Equal("http://old:7070", loaded.Options.SchedulerAddress);
        Assert.Equal(["gpu"], loaded.Options.Queues);
        Assert.Equal("old-1", loaded.Options.AgentId);
        Assert.Equal(3, loaded.Options.Slots);
        Assert.Equal("vision", loaded.Options.Labels["team"]);
        Assert.Equal(TimeSpan.FromSeconds(1), loaded.Options.MaxReconnectDelay);
        Assert.Equal(
            [
                "--id is deprecated and will be removed in the next release; use --agent-id",
                "--Agent:MaxReconnectDelay is deprecated and will be removed in the next release; use --max-reconnect-delay",
                "CP_AGENT__LABELS__TEAM is deprecated and will be removed in the next release; use CP_LABELS__TEAM",
                "CP_AGENT__SLOTS is deprecated and will be removed in the next release; use CP_SLOTS",
            ],
            loaded.Warnings.Where(w => !w.StartsWith("section", StringComparison.Ordinal)));
        Assert.Contains(loaded.Warnings, w => w.StartsWith($"section \"Agent\" of {Path.Combine(_dir.Path, "appsettings.json")} is deprecated", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(new[] { "--slots", "0" }, "Slots is 0; set it between 1 and 10000 (from flag --slots)")]
    [InlineData(new[] { "--agent-id", "Bad_Id" }, "AgentId 'Bad_Id' must match [a-z0-9][a-z0-9._-]{0,62}; use lower-case letters, digits, '.', '_' or '-', e.g. gpu-box-1 (from flag --agent-id)")]
    [InlineData(new[] { "--id", "Bad_Id" }, "AgentId 'Bad_Id' must match [a-z0-9][a-z0-9._-]{0,62}; use lower-case letters, digits, '.', '_' or '-', e.g. gpu-box-1 (from flag --id)")]
    [InlineData(new[] { "--scheduler", "localhost:7070" }, "SchedulerAddress 'localhost:7070' is not an http:// or https:// address; set it like http://127.0.0.1:7070 (from flag --scheduler)")]
    [InlineData(new[] { "--queues", "GPU" }, "Queues entry 'GPU' must match [a-z0-9][a-z0-9._-]{0,62}; use lower-case letters, digits, '.', '_' or '-' (from flag --queues)")]
    [InlineData(new[] { "--labels", "zone" }, "Labels entry 'zone' is not key=value; write e.g. team=vision,gpu=a100 (from flag --labels)")]
    [InlineData(new[] { "--shutdown-grace-period", "long" }, "ShutdownGracePeriod 'long' is not a duration; write e.g. 500ms, 30s, 5m, 1h30m or 00:00:30 (from flag --shutdown-grace-period)")]
    public void Load_BadValue_OneMessageNamingTheSettingItsFixAndTheFlag(string[] args, string expected)
    {
        var ex = Assert.Throws<SettingException>(() => Load(args));

        Assert.Equal(expected, ex.Message);
    }

    [Fact]
    public void Settings_Table_CoversEveryAgentOptionsProperty()
    {
        var settable = typeof(AgentOptions).GetProperties().Where(p => p.CanWrite).Select(p => p.Name);

        Assert.Empty(settable.Except(AgentHostBuilder.Settings.Settings.Select(s => s.Property)));
    }

    [Fact]
    public void ShutdownTimeout_IsLongerThanTheWholeDrain()
    {
        var options = new AgentOptions { ShutdownGracePeriod = TimeSpan.FromMinutes(9), KillGracePeriod = TimeSpan.FromSeconds(5), ConnectTimeout = TimeSpan.FromSeconds(10) };

        var timeout = AgentHostBuilder.ShutdownTimeout(options);

        Assert.True(timeout > options.ShutdownGracePeriod + options.KillGracePeriod + options.ConnectTimeout, $"{timeout} leaves no margin");
    }
}
