using ControlPlane.Cli.Internal;
using ControlPlane.Scheduler;
using Xunit;

namespace ControlPlane.Cli.Tests;

/// <summary>cpctl auth token create|ls|revoke and the one line cpctl prints for each refused credential, against a real scheduler.</summary>
public sealed class CpctlAuthTests : IAsyncLifetime
{
    private const string AdminToken = "cpt_cli-test-admin-0123456789abcdef";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private SchedulerServer _server = null!;

    private string Address => _server.Addresses[0].ToString().TrimEnd('/');

    public async Task InitializeAsync()
    {
        _server = new SchedulerServer(new SchedulerOptions { Listen = "127.0.0.1:0", AdminToken = AdminToken });
        await _server.StartAsync();
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<CpctlTests.Result> Cpctl(string? token, params string[] args)
    {
        var env = new Dictionary<string, string> { ["CP_SCHEDULER"] = Address };
        if (token is not null)
        {
            env["CP_TOKEN"] = token;
        }

        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await Internal.Cpctl.RunAsync(args, new CliContext(output, error, env), handleTermination: false, CancellationToken.None).WaitAsync(Timeout);
        return new CpctlTests.Result(exit, output.ToString(), error.ToString());
    }

    private static string LastLine(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1];

    [Fact]
    public async Task TokenCreate_PrintsTheTokenAloneOnTheLastLine_WhichThenWorks()
    {
        var created = await Cpctl(AdminToken, "auth", "token", "create", "--role", "submitter", "--name", "ci", "--ttl", "24h");
        var token = LastLine(created.Out);
        var ls = await Cpctl(token, "run", "ls");

        Assert.True(created.ExitCode == 0, created.Error);
        Assert.Matches("^cpt_[A-Za-z0-9_-]{32}$", token);
        Assert.True(ls.ExitCode == 0, ls.Error);
    }

    [Fact]
    public async Task TokenCreate_NamespaceAfterTheCommand_IsTheTokensNamespace()
    {
        var scoped = await Cpctl(AdminToken, "auth", "token", "create", "--role", "submitter", "--namespace", "team-b", "--name", "ci-b");
        var everywhere = await Cpctl(AdminToken, "auth", "token", "create", "--role", "operator", "--namespace", "*", "--name", "ops");

        Assert.True(scoped.ExitCode == 0, scoped.Error);
        Assert.StartsWith("created token 'ci-b': role submitter, namespace team-b,", scoped.Error, StringComparison.Ordinal);
        Assert.True(everywhere.ExitCode == 0, everywhere.Error);
        Assert.StartsWith("created token 'ops': role operator, namespace *,", everywhere.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TokenLs_ShowsNamesAndRolesNeverSecrets()
    {
        var token = LastLine((await Cpctl(AdminToken, "auth", "token", "create", "--role", "agent", "--agent-id", "gpu-*", "--name", "gpus")).Out);

        var ls = await Cpctl(AdminToken, "auth", "token", "ls");

        Assert.Equal(0, ls.ExitCode);
        Assert.Contains("gpus", ls.Out, StringComparison.Ordinal);
        Assert.Contains("gpu-*", ls.Out, StringComparison.Ordinal);
        Assert.Contains("admin", ls.Out, StringComparison.Ordinal);
        Assert.DoesNotContain(token, ls.Out, StringComparison.Ordinal);
        Assert.DoesNotContain(AdminToken, ls.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RevokedToken_OneLineNamingItAndWhatToDo()
    {
        var token = LastLine((await Cpctl(AdminToken, "auth", "token", "create", "--role", "reader", "--name", "ci")).Out);
        var revoke = await Cpctl(AdminToken, "auth", "token", "revoke", "ci");

        var refused = await Cpctl(token, "run", "ls");

        Assert.Equal("token 'ci' (namespace default) revoked\n", revoke.Out);
        Assert.Equal(ExitCodes.Failure, refused.ExitCode);
        Assert.Equal("error: the scheduler refused the token 'ci' (revoked); create a new one with cpctl auth token create (UNAUTHENTICATED)\n", refused.Error);
    }

    [Fact]
    public async Task NoToken_OneLineSayingHowToGiveOne()
    {
        var refused = await Cpctl(null, "run", "ls");

        Assert.Equal(ExitCodes.Failure, refused.ExitCode);
        Assert.Equal("error: no token given: pass --token or set CP_TOKEN (UNAUTHENTICATED)\n", refused.Error);
    }

    [Fact]
    public async Task UnknownToken_OneLine()
    {
        var refused = await Cpctl(null, "--token", "cpt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "run", "ls");

        Assert.Equal("error: the scheduler does not know the token given (--token or CP_TOKEN); check it, or create one with cpctl auth token create (UNAUTHENTICATED)\n", refused.Error);
    }

    [Fact]
    public async Task RoleTooWeak_OneLineNamingTokenRoleAndMethod()
    {
        var token = LastLine((await Cpctl(AdminToken, "auth", "token", "create", "--role", "reader", "--name", "viewer")).Out);

        var refused = await Cpctl(token, "agents", "drain", "agent-1");

        Assert.Equal(ExitCodes.Failure, refused.ExitCode);
        Assert.Equal("error: the token 'viewer' (role reader) may not call controlplane.v1.AdminService/DrainAgent; use a token whose role allows it (README: Authentication) (PERMISSION_DENIED)\n", refused.Error);
    }

    [Fact]
    public async Task TokenCreate_BadRole_ExitsTwoNamingTheRoles()
    {
        var result = await Cpctl(AdminToken, "auth", "token", "create", "--role", "root");

        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        Assert.Equal("error: --role 'root' is not a role; use reader, submitter, approver, operator, admin or agent\n", result.Error);
    }

    [Fact]
    public async Task TokenCreate_GlobNotTrailing_ExitsTwoWithTheFieldPath()
    {
        var result = await Cpctl(AdminToken, "auth", "token", "create", "--role", "agent", "--agent-id", "*-gpu");

        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        Assert.StartsWith("error: agent_id: agent_id '*-gpu' must be an agent id", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AuthenticationOff_AnyCommand_PrintsOneNoticeOnStderr()
    {
        await using var open = new SchedulerServer(new SchedulerOptions { Listen = "127.0.0.1:0" });
        await open.StartAsync();
        using var output = new StringWriter();
        using var error = new StringWriter();
        var env = new Dictionary<string, string> { ["CP_SCHEDULER"] = open.Addresses[0].ToString().TrimEnd('/') };

        var exit = await Internal.Cpctl.RunAsync(["run", "ls"], new CliContext(output, error, env), handleTermination: false, CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(0, exit);
        var line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("cpctl: note: the scheduler at http://127.0.0.1:", line, StringComparison.Ordinal);
        Assert.EndsWith("runs with authentication off: it checks no token, and anyone who reaches it may do anything", line, StringComparison.Ordinal);
    }
}
