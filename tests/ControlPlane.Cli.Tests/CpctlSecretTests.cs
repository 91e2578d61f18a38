using System.Text;
using ControlPlane.Cli.Internal;
using ControlPlane.Scheduler;
using Xunit;

namespace ControlPlane.Cli.Tests;

/// <summary>cpctl secret set|ls|rm against a real scheduler (embedded store, a key made at start).</summary>
public sealed class CpctlSecretTests : IAsyncLifetime
{
    private const string AdminToken = "cpt_cli-test-admin-secrets-0123456789";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private SchedulerServer _server = null!;

    private string Address => _server.Addresses[0].ToString().TrimEnd('/');

    public async Task InitializeAsync()
    {
        _server = new SchedulerServer(new SchedulerOptions { Listen = "127.0.0.1:0", AdminToken = AdminToken });
        await _server.StartAsync();
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<CpctlTests.Result> Cpctl(string? stdin, params string[] args)
    {
        var env = new Dictionary<string, string> { ["CP_SCHEDULER"] = Address, ["CP_TOKEN"] = AdminToken };
        using var output = new StringWriter();
        using var error = new StringWriter();
        var context = new CliContext(output, error, env) { OpenInput = () => new MemoryStream(Encoding.UTF8.GetBytes(stdin ?? "")) };
        var exit = await Internal.Cpctl.RunAsync(args, context, handleTermination: false, CancellationToken.None).WaitAsync(Timeout);
        return new CpctlTests.Result(exit, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task SetFromStdin_LsShowsNameAndQueuesNeverTheValue_RmDeletes()
    {
        var set = await Cpctl("s3cr3t-value\n", "secret", "set", "db-password", "--queues", "deploy, build");
        var ls = await Cpctl(null, "secret", "ls");
        var json = await Cpctl(null, "secret", "ls", "--json");
        var rm = await Cpctl(null, "secret", "rm", "db-password");
        var after = await Cpctl(null, "secret", "ls");

        Assert.True(set.ExitCode == 0, set.Error);
        Assert.Contains("secret 'db-password' created (12 bytes, queues build, deploy)", set.Out, StringComparison.Ordinal);
        Assert.Contains("db-password", ls.Out, StringComparison.Ordinal);
        Assert.Contains("build,deploy", ls.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t", ls.Out + json.Out + set.Out + set.Error, StringComparison.Ordinal);
        Assert.Equal(0, rm.ExitCode);
        Assert.Contains("no secrets", after.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SetFromFile_TakenAsIs()
    {
        var path = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(path, "line1\nline2\n");

            var set = await Cpctl(null, "secret", "set", "cert", "--from-file", path);

            Assert.True(set.ExitCode == 0, set.Error);
            Assert.Contains("(12 bytes, every queue)", set.Out, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task SetBadName_OneLineErrorNamingTheField()
    {
        var set = await Cpctl("v", "secret", "set", "Bad Name");

        Assert.NotEqual(0, set.ExitCode);
        Assert.Contains("name", set.Error, StringComparison.Ordinal);
        Assert.Contains("[a-z0-9]", set.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RmUnknown_NotFound()
    {
        var rm = await Cpctl(null, "secret", "rm", "nope");

        Assert.NotEqual(0, rm.ExitCode);
        Assert.Contains("no secret named 'nope'", rm.Error, StringComparison.Ordinal);
    }
}
