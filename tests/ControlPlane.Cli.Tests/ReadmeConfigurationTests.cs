using ControlPlane.Agent;
using ControlPlane.Hosting;
using ControlPlane.Scheduler.Hosting;
using ControlPlane.Tests.Support;
using Xunit;

namespace ControlPlane.Cli.Tests;

/// <summary>README's configuration tables against the daemons' declared tables: one truth for every name.</summary>
public sealed class ReadmeConfigurationTests
{
    private static readonly string[] Readme = File.ReadAllLines(Path.Combine(TestEnvironment.RepositoryRoot, "README.md"));

    [Fact]
    public void Readme_SchedulerTable_HasARowForEverySetting() => AssertRows(SchedulerHost.Settings, "### Scheduler");

    [Fact]
    public void Readme_AgentTable_HasARowForEverySetting() => AssertRows(AgentHostBuilder.Settings, "### Agent");

    private static void AssertRows<TOptions>(DaemonSettings<TOptions> settings, string heading)
        where TOptions : class, new()
    {
        var start = Array.IndexOf(Readme, heading);
        Assert.True(start >= 0, $"README has no '{heading}' heading");
        var rows = Readme.Skip(start + 1).SkipWhile(l => !l.StartsWith('|')).TakeWhile(l => l.StartsWith('|')).Skip(2).ToList();

        var expected = settings.Settings.Select(s => $"| {s.Name} | `{s.Flag} {s.ValueName}` | `{s.EnvironmentVariable}` | {(s.IsConfigFile ? "-" : $"`{s.Name}`")} |");
        Assert.Equal(expected, rows.Select(r => r[..(NthIndex(r, '|', 5) + 1)]));
    }

    private static int NthIndex(string text, char c, int n)
    {
        var index = -1;
        for (var i = 0; i < n; i++)
        {
            index = text.IndexOf(c, index + 1);
        }

        return index;
    }
}
