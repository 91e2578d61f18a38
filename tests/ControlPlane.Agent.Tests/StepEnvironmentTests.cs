using System.Text;
using ControlPlane.Agent.Internal;
using ControlPlane.Hosting;

namespace ControlPlane.Agent.Tests;

/// <summary>A shell step's environment is minimal, and its work directory private, under a root only the agent's user reaches.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class StepEnvironmentTests : IDisposable
{
    private static readonly Dictionary<string, string> AgentVariables = new(StringComparer.Ordinal)
    {
        ["PATH"] = "/usr/bin:/bin",
        ["HOME"] = "/home/agent",
        ["LANG"] = "C.UTF-8",
        ["CP_TOKEN"] = "secret",
        ["CP_SCHEDULER"] = "http://scheduler:7070",
        ["CP_NAMESPACE"] = "team-a",
        ["SOMETHING"] = "x",
        ["AWS_REGION"] = "eu-west-1",
        ["AWSX"] = "no",
    };

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task RunAsync_AgentEnvironment_StepSeesOnlyBaseAndContractVariables()
    {
        var names = await EnvOfStepAsync(new ShellFramework(TimeSpan.FromSeconds(1)) { AgentEnvironment = () => AgentVariables });

        Assert.Equal(
            ["CP_ATTEMPT", "CP_INPUTS_DIR", "CP_OUTPUT_FILE", "CP_PARAMS", "CP_RUN_ID", "CP_STEP_ID", "CP_WORK_DIR", "HOME", "LANG", "PATH"],
            names.Except(["PWD", "SHLVL", "OLDPWD", "_"]).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task RunAsync_PassEnvWithAPrefixGlob_PassesMatchesButNeverCpVariables()
    {
        var shell = new ShellFramework(TimeSpan.FromSeconds(1), passEnvironment: ["SOMETHING", "AWS_*", "C*"]) { AgentEnvironment = () => AgentVariables };

        var names = await EnvOfStepAsync(shell);

        Assert.Contains("SOMETHING", names);
        Assert.Contains("AWS_REGION", names);
        Assert.DoesNotContain("AWSX", names);
        Assert.DoesNotContain("CP_TOKEN", names);
        Assert.DoesNotContain("CP_SCHEDULER", names);
        Assert.DoesNotContain("CP_NAMESPACE", names);
    }

    [Theory]
    [InlineData("CP_TOKEN", "never pass to steps")]
    [InlineData("cp_scheduler", "names a CP_ variable")]
    [InlineData("CP_NAMESPACE", "names a CP_ variable")]
    [InlineData("*", "is not a variable name")]
    [InlineData("A-B", "is not a variable name")]
    [InlineData("1X", "is not a variable name")]
    public void Validate_PassEnvEntry_RefusedWithTheReason(string name, string expected)
    {
        var options = new AgentOptions { PassEnv = ["OK_NAME", name] };

        var ex = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Contains($"PassEnv entry '{name}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_WorkDirectoryAndItsParents_AreMode0700()
    {
        var execution = Steps.Shell(Path.Combine(_dir.Path, "run-1", "step-a.1.1"), "stat -c '%a' \"$CP_WORK_DIR\" \"$CP_INPUTS_DIR\" \"$CP_WORK_DIR/..\" \"$CP_WORK_DIR/../..\" > \"$CP_OUTPUT_FILE\"");

        var result = await new ShellFramework(TimeSpan.FromSeconds(1)).RunAsync(execution, new RecordingReporter(), CancellationToken.None).WithTimeout();

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal(["700", "700", "700", "700"], Encoding.UTF8.GetString(result.Output.Span).Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Prepare_WorldWritableRoot_RefusedWithHowToFix()
    {
        var root = Path.Combine(_dir.Path, "open");
        Directory.CreateDirectory(root);
        File.SetUnixFileMode(root, (UnixFileMode)0x1FF);

        var ex = Assert.Throws<InvalidOperationException>(() => WorkRoot.Prepare(root));

        Assert.Contains("is world-writable (mode 0777)", ex.Message, StringComparison.Ordinal);
        Assert.Contains("chmod 700", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Prepare_UnderAWorldWritableParentWithoutStickyBit_Refused()
    {
        var parent = Path.Combine(_dir.Path, "shared");
        Directory.CreateDirectory(parent);
        File.SetUnixFileMode(parent, (UnixFileMode)0x1FF);

        var ex = Assert.Throws<InvalidOperationException>(() => WorkRoot.Prepare(Path.Combine(parent, "agent")));

        Assert.Contains("without the sticky bit", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Prepare_MissingRoot_CreatedPrivateWithItsParents()
    {
        var root = Path.Combine(_dir.Path, "state", "controlplane", "agent", "a1");

        WorkRoot.Prepare(root);

        Assert.Equal((UnixFileMode)0x1C0, File.GetUnixFileMode(root));
        Assert.Equal((UnixFileMode)0x1C0, File.GetUnixFileMode(Path.Combine(_dir.Path, "state")));
    }

    [Fact]
    public async Task Host_WorldWritableWorkRoot_ExitsTwoBeforeConnecting()
    {
        var root = Path.Combine(_dir.Path, "open-root");
        Directory.CreateDirectory(root);
        File.SetUnixFileMode(root, (UnixFileMode)0x1FF);
        using var error = new StringWriter();

        var exit = await AgentHostBuilder.Create(["--scheduler", "http://127.0.0.1:1", "--work-root", root])
            .RunAsync(new DaemonContext("cp-agent", TextWriter.Null, error, new Dictionary<string, string>(), _dir.Path), CancellationToken.None)
            .WithTimeout();

        Assert.Equal(2, exit);
        Assert.StartsWith($"error: WorkRoot '{root}' is world-writable", error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/var/lib/controlplane/agent", null, "/var/lib/controlplane/agent/a1")]
    [InlineData(null, "/home/u/.state", "/home/u/.state/controlplane/agent/a1")]
    [InlineData(null, null, "/home/u/.local/state/controlplane/agent/a1")]
    [InlineData(null, "relative", "/home/u/.local/state/controlplane/agent/a1")]
    public void Default_PerUserStateDirectory_NeverTheSharedTemp(string? stateDirectory, string? xdgStateHome, string expected)
    {
        var variables = new Dictionary<string, string?> { ["STATE_DIRECTORY"] = stateDirectory, ["XDG_STATE_HOME"] = xdgStateHome, ["HOME"] = "/home/u" };

        Assert.Equal(expected, WorkRoot.Default("a1", name => variables.GetValueOrDefault(name)));
    }

    private async Task<List<string>> EnvOfStepAsync(ShellFramework shell)
    {
        var execution = Steps.Shell(Path.Combine(_dir.Path, "attempt"), "env > \"$CP_OUTPUT_FILE\"");

        var result = await shell.RunAsync(execution, new RecordingReporter(), CancellationToken.None).WithTimeout();

        Assert.True(result.Succeeded, result.Error);
        return Encoding.UTF8.GetString(result.Output.Span).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => l.Contains('=', StringComparison.Ordinal)).Select(l => l[..l.IndexOf('=', StringComparison.Ordinal)]).ToList();
    }
}
