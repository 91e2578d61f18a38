using Microsoft.Extensions.Configuration;

namespace ControlPlane.Agent.Tests;

public sealed class AgentOptionsTests
{
    [Fact]
    public void Validate_Defaults_Pass()
    {
        var options = new AgentOptions();

        options.Validate();

        Assert.Equal(["default"], options.Queues);
        Assert.Equal(Environment.ProcessorCount, options.Slots);
    }

    [Fact]
    public void Validate_SeveralBadSettings_ReportsEachWithItsFix()
    {
        var options = new AgentOptions { SchedulerAddress = "127.0.0.1:7070", AgentId = "Bad Id", Slots = 0, Queues = ["ok", "Not OK"] };

        var ex = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Contains("Agent:SchedulerAddress", ex.Message, StringComparison.Ordinal);
        Assert.Contains("http://127.0.0.1:7070", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Agent:AgentId 'Bad Id'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Agent:Slots is 0", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'Not OK'", ex.Message, StringComparison.Ordinal);
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
    public void BindOptions_CommaSeparatedFlags_SplitIntoQueuesAndLabels()
    {
        var config = new ConfigurationBuilder()
            .AddCommandLine(["--Agent:Queues", "gpu,default", "--Agent:Labels", "team=vision,zone=a", "--Agent:Slots", "3", "--Agent:HeartbeatInterval", "00:00:02"])
            .Build();

        var options = AgentHostBuilder.BindOptions(config);

        Assert.Equal(["gpu", "default"], options.Queues);
        Assert.Equal("vision", options.Labels["team"]);
        Assert.Equal("a", options.Labels["zone"]);
        Assert.Equal(3, options.Slots);
        Assert.Equal(TimeSpan.FromSeconds(2), options.HeartbeatInterval);
    }

    [Fact]
    public void BindOptions_QueuesAsList_ReplaceTheDefault()
    {
        var config = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Agent:Queues:0"] = "gpu" })
            .Build();

        Assert.Equal(["gpu"], AgentHostBuilder.BindOptions(config).Queues);
    }

    [Fact]
    public void BindOptions_NoQueues_KeepsDefault()
    {
        Assert.Equal(["default"], AgentHostBuilder.BindOptions(new ConfigurationBuilder().Build()).Queues);
    }
}
