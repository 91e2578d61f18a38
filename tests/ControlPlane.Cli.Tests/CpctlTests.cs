using ControlPlane.Cli.Internal;
using ControlPlane.Client.Tests;
using ControlPlane.V1;
using Google.Protobuf;
using Grpc.Core;
using Xunit;

namespace ControlPlane.Cli.Tests;

public sealed class CpctlTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("cpctl-tests-").FullName;
    private TestRunService _service = null!;

    public sealed record Result(int ExitCode, string Out, string Error);

    public async Task InitializeAsync() => _service = await TestRunService.StartAsync();

    public async Task DisposeAsync()
    {
        await _service.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private Task<Result> Cpctl(params string[] args) => Cpctl(new Dictionary<string, string> { ["CP_SCHEDULER"] = _service.Address }, args);

    private static async Task<Result> Cpctl(Dictionary<string, string> env, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var context = new CliContext(output, error, name => env.GetValueOrDefault(name));
        var exit = await Internal.Cpctl.RunAsync(args, context, handleTermination: false, CancellationToken.None).WaitAsync(Timeout);
        return new Result(exit, output.ToString(), error.ToString());
    }

    private string WriteFile(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static RunSpec Spec(params string[] stepIds)
    {
        var spec = new RunSpec { Name = "demo" };
        foreach (var id in stepIds)
        {
            spec.Steps.Add(new StepSpec { Id = id, Framework = "shell", Command = "true" });
        }

        return spec;
    }

    private const string Pipeline = """
        name: hello
        labels: { team: vision }
        steps:
          - id: a
            framework: shell
            run: echo hi
          - id: b
            needs: [a]
            framework: shell
            run: echo there
        """;

    [Fact]
    public async Task Run_NoCommand_ExitsTwoWithUsageHint()
    {
        var result = await Cpctl();

        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        Assert.Contains("Required command was not provided", result.Error, StringComparison.Ordinal);
        Assert.Contains("cpctl --help", result.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("run", "get")]
    [InlineData("run", "get", "r-1", "extra")]
    [InlineData("run", "ls", "--bogus")]
    [InlineData("-o", "xml", "run", "ls")]
    [InlineData("run", "watch", "r-1", "--after-seq", "many")]
    public async Task Run_BadArguments_ExitTwo(params string[] args)
    {
        var result = await Cpctl(args);

        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        Assert.StartsWith("error: ", result.Error, StringComparison.Ordinal);
        Assert.Empty(result.Out);
    }

    [Fact]
    public async Task Help_ListsCommandsAndExitsZero()
    {
        var result = await Cpctl("--help");

        Assert.Equal(0, result.ExitCode);
        foreach (var command in new[] { "server", "agent", "dev", "run", "agents" })
        {
            Assert.Contains(command, result.Out, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task RunGet_UnknownRun_PrintsOneErrorLineAndExitsOne()
    {
        var result = await Cpctl("run", "get", "r-123");

        Assert.Equal(ExitCodes.Failure, result.ExitCode);
        Assert.Equal("error: run r-123 not found (NOT_FOUND)" + Environment.NewLine, result.Error);
    }

    [Fact]
    public async Task RunGet_Text_ShowsStepsWithStateAttemptAndAgent()
    {
        var run = _service.AddRun(Spec("build", "test"));
        _service.StepEvent(run.Id, "build", StepState.Ready, StepState.Running);

        var result = await Cpctl("run", "get", run.Id);

        Assert.Equal(0, result.ExitCode);
        var lines = result.Out.Split(Environment.NewLine);
        Assert.Contains($"Run       {run.Id}", lines);
        Assert.Contains("State     PENDING", lines);
        var header = Assert.Single(lines, l => l.StartsWith("STEP", StringComparison.Ordinal));
        Assert.Equal(["STEP", "KIND", "STATE", "ATTEMPT", "PROGRESS", "AGENT", "DETAIL"], header.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var build = Assert.Single(lines, l => l.StartsWith("build", StringComparison.Ordinal));
        Assert.Equal(["build", "task", "RUNNING", "1", "0%", "agent-1"], build.Split(' ', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task RunGet_Json_PrintsTheResponseAsProtobufJson()
    {
        var run = _service.AddRun(Spec("build"));

        var result = await Cpctl("run", "get", run.Id, "--output", "json");

        Assert.Equal(0, result.ExitCode);
        var parsed = JsonParser.Default.Parse<GetRunResponse>(result.Out);
        Assert.Equal(run.Id, parsed.Run.Id);
        Assert.Equal("build", parsed.Run.Steps[0].Id);
    }

    [Fact]
    public async Task SchedulerFlag_OverridesEnvironment()
    {
        var run = _service.AddRun(Spec("a"));
        var env = new Dictionary<string, string> { ["CP_SCHEDULER"] = "http://127.0.0.1:1" };

        var result = await Cpctl(env, "run", "get", run.Id, "--scheduler", _service.Address);

        Assert.Equal(0, result.ExitCode);
    }

    [Fact]
    public async Task SchedulerUnreachable_SaysSoWithHintAndExitsOne()
    {
        var env = new Dictionary<string, string> { ["CP_SCHEDULER"] = "http://127.0.0.1:1" };

        var result = await Cpctl(env, "run", "get", "r-1");

        Assert.Equal(ExitCodes.Failure, result.ExitCode);
        Assert.Contains("(UNAVAILABLE)", result.Error, StringComparison.Ordinal);
        Assert.Contains("CP_SCHEDULER", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SchedulerBadUrl_ExitsTwo()
    {
        var result = await Cpctl("run", "get", "r-1", "--scheduler", "127.0.0.1:7070");

        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        Assert.Contains("http://127.0.0.1:7070", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Token_FromEnvironment_IsSentAsBearer()
    {
        var run = _service.AddRun(Spec("a"));
        var env = new Dictionary<string, string> { ["CP_SCHEDULER"] = _service.Address, ["CP_TOKEN"] = "tok-1" };

        await Cpctl(env, "run", "get", run.Id);

        Assert.Equal("Bearer tok-1", _service.LastHeaders?.GetValue("authorization"));
    }

    /// <summary>The requests <paramref name="args"/> made, with their cp-namespace header.</summary>
    private async Task<(Result Result, List<(string Path, string? Namespace)> Requests)> Requests(Dictionary<string, string> env, params string[] args)
    {
        _service.Requests.Clear();
        var result = await Cpctl(env, args);
        return (result, [.. _service.Requests]);
    }

    private Dictionary<string, string> Env(string? ns = null)
    {
        var env = new Dictionary<string, string> { ["CP_SCHEDULER"] = _service.Address };
        if (ns is not null)
        {
            env["CP_NAMESPACE"] = ns;
        }

        return env;
    }

    [Theory]
    [InlineData("run", "submit", "FILE")]
    [InlineData("run", "get", "r-1")]
    [InlineData("run", "ls")]
    [InlineData("run", "watch", "r-1")]
    [InlineData("run", "cancel", "r-1")]
    [InlineData("run", "pause", "r-1")]
    [InlineData("run", "resume", "r-1")]
    [InlineData("run", "retry", "r-1")]
    [InlineData("run", "approve", "r-1", "gate")]
    [InlineData("run", "output", "r-1", "a")]
    [InlineData("agents", "ls")]
    [InlineData("agents", "drain", "gpu-1")]
    [InlineData("auth", "token", "ls")]
    [InlineData("auth", "token", "create", "--role", "reader")]
    [InlineData("auth", "token", "revoke", "ci")]
    [InlineData("audit", "ls")]
    [InlineData("secret", "ls")]
    [InlineData("secret", "set", "db-password", "--from-file", "FILE")]
    [InlineData("secret", "rm", "db-password")]
    public async Task Namespace_EveryCommandThatCallsTheScheduler_SendsItAsCpNamespace(params string[] command)
    {
        var file = WriteFile("ns.yaml", Pipeline);
        var args = command.Select(a => a == "FILE" ? file : a).ToArray();

        var (fromFlag, flagRequests) = await Requests(Env(), ["--namespace", "team-a", .. args]);
        var (fromEnvironment, environmentRequests) = await Requests(Env("team-b"), args);
        var (neither, neitherRequests) = await Requests(Env(), args);
        var tokenNamespaceOption = command is ["auth", "token", "create" or "revoke", ..];
        var (afterCommand, afterCommandRequests) = await Requests(Env("team-b"), tokenNamespaceOption ? args : [.. args, "--namespace", "team-c"]);

        Assert.True(flagRequests.Count > 0, fromFlag.Error);
        Assert.All(flagRequests, r => Assert.Equal("team-a", r.Namespace));
        Assert.True(environmentRequests.Count > 0, fromEnvironment.Error);
        Assert.All(environmentRequests, r => Assert.Equal("team-b", r.Namespace));
        Assert.True(neitherRequests.Count > 0, neither.Error);
        Assert.All(neitherRequests, r => Assert.Null(r.Namespace));
        Assert.True(afterCommandRequests.Count > 0, afterCommand.Error);
        Assert.All(afterCommandRequests, r => Assert.Equal(tokenNamespaceOption ? "team-b" : "team-c", r.Namespace));
    }

    [Theory]
    [InlineData("run", "ls")]
    [InlineData("auth", "token", "ls")]
    [InlineData("auth", "token", "create")]
    [InlineData("auth", "token", "revoke")]
    [InlineData("secret", "set")]
    public async Task Namespace_Help_ListsOneNamespaceOption(params string[] command)
    {
        var result = await Cpctl([.. command, "--help"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Single(result.Out.Split('\n'), l => l.TrimStart().StartsWith("--namespace", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Namespace_FlagAfterTheCommand_OverridesTheEnvironment()
    {
        var run = _service.AddRun(Spec("a"));

        var (result, requests) = await Requests(Env("team-env"), "run", "get", run.Id, "--namespace", "team-flag");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("team-flag", Assert.Single(requests).Namespace);
    }

    [Theory]
    [InlineData("--namespace", "Team-A", "--namespace 'Team-A'")]
    [InlineData("--namespace", "*", "--namespace '*'")]
    [InlineData(null, "team a", "CP_NAMESPACE 'team a'")]
    public async Task Namespace_Invalid_ExitsTwoNamingWhereItCameFromAndSendsNothing(string? flag, string value, string expected)
    {
        string[] args = flag is null ? ["run", "ls"] : ["run", "ls", flag, value];

        var (result, requests) = await Requests(Env(flag is null ? value : null), args);

        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        Assert.StartsWith($"error: {expected} is not a namespace name; use [a-z0-9][a-z0-9._-]{{0,62}}", result.Error, StringComparison.Ordinal);
        Assert.Empty(requests);
    }

    [Fact]
    public async Task Namespace_AuthTokenCreateAndRevoke_LocalOptionIsTheTokensNamespaceWhileCpNamespaceSetsTheHeader()
    {
        var (create, createRequests) = await Requests(Env("team-a"), "auth", "token", "create", "--role", "admin", "--namespace", "*");
        var (revoke, revokeRequests) = await Requests(Env("team-a"), "auth", "token", "revoke", "ci", "--namespace", "team-b");

        Assert.DoesNotContain("namespace name", create.Error, StringComparison.Ordinal);
        Assert.Equal("team-a", Assert.Single(createRequests).Namespace);
        Assert.DoesNotContain("namespace name", revoke.Error, StringComparison.Ordinal);
        Assert.Equal("team-a", Assert.Single(revokeRequests).Namespace);
    }

    [Fact]
    public void Describe_NamespaceNotAllowed_NamesTokenItsNamespaceTheOneAskedAndTheFix()
    {
        var ex = new Google.Rpc.Status
        {
            Code = (int)Grpc.Core.StatusCode.PermissionDenied,
            Message = "denied",
            Details =
            {
                Google.Protobuf.WellKnownTypes.Any.Pack(new Google.Rpc.ErrorInfo
                {
                    Domain = "controlplane.v1",
                    Reason = "ERROR_REASON_NAMESPACE_NOT_ALLOWED",
                    Metadata = { ["token_name"] = "ci", ["namespace"] = "team-a", ["requested"] = "team-b" },
                }),
            },
        }.ToRpcException();

        Assert.Equal(
            "error: the token 'ci' belongs to namespace 'team-a' and may not act in namespace 'team-b'; drop --namespace / CP_NAMESPACE to act in 'team-a', or use a token of namespace 'team-b' (PERMISSION_DENIED)",
            Internal.Cpctl.Describe(ex));
    }

    [Fact]
    public async Task RunSubmit_ValidFile_SubmitsAndPrintsTheRunId()
    {
        var path = WriteFile("hello.yaml", Pipeline);

        var result = await Cpctl("run", "submit", path);

        Assert.Equal(0, result.ExitCode);
        var run = await _service.FirstSubmitted.WaitAsync(Timeout);
        Assert.Equal($"run {run.Id} submitted (hello, 2 steps)" + Environment.NewLine, result.Out);
        Assert.Equal("vision", run.Labels["team"]);
        Assert.Equal(["a"], run.Spec.Steps[1].Needs);
    }

    [Fact]
    public async Task RunSubmit_SameIdempotencyKey_ReportsTheExistingRun()
    {
        var path = WriteFile("hello.yaml", Pipeline);

        var first = await Cpctl("run", "submit", path, "--idempotency-key", "k1");
        var second = await Cpctl("run", "submit", path, "--idempotency-key", "k1");

        var run = await _service.FirstSubmitted.WaitAsync(Timeout);
        Assert.Equal(0, first.ExitCode);
        Assert.Equal(0, second.ExitCode);
        Assert.Equal($"run {run.Id} already exists for idempotency key 'k1' (PENDING)" + Environment.NewLine, second.Out);
    }

    [Fact]
    public async Task RunSubmit_BadFile_PrintsEachProblemWithLineAndColumnAndExitsTwo()
    {
        var path = WriteFile("bad.yaml", """
            name: hello
            steps:
              - id: a
                framework: shell
                timeout: 10 minutes
                colour: red
            """);

        var result = await Cpctl("run", "submit", path);

        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        var lines = result.Error.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith($"{path}:5:5: steps[0].timeout: '10 minutes' is not a duration", lines[0], StringComparison.Ordinal);
        Assert.StartsWith($"{path}:6:5: steps[0].colour: unknown key 'colour'", lines[1], StringComparison.Ordinal);
        Assert.Equal(0, _service.Calls("SubmitRun"));
    }

    [Fact]
    public async Task RunSubmit_MissingFile_ExitsTwo()
    {
        var result = await Cpctl("run", "submit", Path.Combine(_dir, "nope.yaml"));

        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        Assert.Contains("nope.yaml", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunSubmit_ServerRejectsSpec_MapsViolationsToFileLines()
    {
        var path = WriteFile("rejected.yaml", """
            name: hello
            steps:
              - id: a
                framework: perl
                run: echo hi
              - id: b
                framework: shell
                needs:
                  - a
                  - ghost
            """);

        var result = await Cpctl("run", "submit", path);

        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        Assert.Equal(
            [
                $"error: the scheduler rejected {path} (INVALID_ARGUMENT):",
                $"{path}:4: steps[0].framework: unknown framework 'perl'; use shell or dotnet",
                $"{path}:10: steps[1].needs[1]: unknown step 'ghost'",
            ],
            result.Error.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
    }

    [Theory]
    [InlineData(RunState.Succeeded, 0)]
    [InlineData(RunState.Failed, 3)]
    [InlineData(RunState.Cancelled, 3)]
    public async Task RunSubmit_Wait_FollowsEventsAndExitsByOutcome(RunState outcome, int expectedExit)
    {
        var path = WriteFile("hello.yaml", Pipeline);

        var cli = Cpctl("run", "submit", path, "--wait");
        var run = await _service.FirstSubmitted.WaitAsync(Timeout);
        _service.StepEvent(run.Id, "a", StepState.Ready, StepState.Running);
        _service.Append(run.Id, new RunEvent { StepLogged = new StepLogged { StepId = "a", Attempt = 1, Stream = LogStream.Stdout, Lines = { "hi" } } });
        _service.Finish(run.Id, outcome);
        var result = await cli;

        Assert.Equal(expectedExit, result.ExitCode);
        var lines = result.Out.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith($"run {run.Id} submitted", lines[0], StringComparison.Ordinal);
        Assert.Matches(@"^#1 \S+ run UNSPECIFIED -> PENDING$", lines[1]);
        Assert.Matches(@"^#2 \S+ step a READY -> RUNNING attempt 1 on agent-1$", lines[2]);
        Assert.Matches(@"^#3 \S+ step a stdout \| hi$", lines[3]);
        Assert.Matches($@"^#4 \S+ run PENDING -> {TextRender.Name(outcome)}$", lines[4]);
        Assert.Equal($"run {run.Id} {TextRender.Name(outcome)}", lines[5]);
    }

    [Fact]
    public async Task RunSubmit_WaitJson_PrintsOnlyTheFinalRun()
    {
        var path = WriteFile("hello.yaml", Pipeline);

        var cli = Cpctl("run", "submit", path, "--wait", "-o", "json");
        var run = await _service.FirstSubmitted.WaitAsync(Timeout);
        _service.Finish(run.Id, RunState.Succeeded);
        var result = await cli;

        Assert.Equal(0, result.ExitCode);
        var final = JsonParser.Default.Parse<GetRunResponse>(result.Out);
        Assert.Equal(RunState.Succeeded, final.Run.State);
    }

    [Fact]
    public async Task RunWatch_CutOffMidStream_PrintsEveryEventOnce()
    {
        var run = _service.AddRun(Spec("a"));
        _service.StepEvent(run.Id, "a", StepState.Ready, StepState.Running);
        _service.Append(run.Id, new RunEvent { StepProgressed = new StepProgressed { StepId = "a", Attempt = 1, Percent = 50, Message = "half way" } });
        _service.Append(run.Id, new RunEvent { StepCheckpointed = new StepCheckpointed { StepId = "a", Attempt = 1, Size = 12 } });
        _service.Finish(run.Id, RunState.Succeeded);
        _service.CutNextWatchAfter(2);

        var result = await Cpctl("run", "watch", run.Id);

        Assert.Equal(0, result.ExitCode);
        var lines = result.Out.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["#1", "#2", "#3", "#4", "#5", "run"], lines.Select(l => l.Split(' ')[0]));
        Assert.EndsWith("step a 50% half way", lines[2], StringComparison.Ordinal);
        Assert.EndsWith("step a checkpoint (12 bytes, attempt 1)", lines[3], StringComparison.Ordinal);
        Assert.Equal([0, 2], _service.WatchAfterSeqs);
    }

    [Fact]
    public async Task RunWatch_Json_PrintsOneEventPerLine()
    {
        var run = _service.AddRun(Spec("a"));
        _service.Finish(run.Id, RunState.Failed);

        var result = await Cpctl("run", "watch", run.Id, "-o", "json", "--after-seq", "1");

        Assert.Equal(ExitCodes.RunNotSucceeded, result.ExitCode);
        var line = Assert.Single(result.Out.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
        var runEvent = JsonParser.Default.Parse<RunEvent>(line);
        Assert.Equal(2, runEvent.Seq);
        Assert.Equal(RunState.Failed, runEvent.RunStateChanged.ToState);
    }

    [Fact]
    public async Task RunLs_StateAndLabelFilters_ListMatchingRuns()
    {
        var labelled = Spec("a");
        labelled.Labels["team"] = "vision";
        var match = _service.AddRun(labelled);
        _service.AddRun(Spec("a"));
        var finished = _service.AddRun(labelled);
        _service.Finish(finished.Id, RunState.Succeeded);

        var result = await Cpctl("run", "ls", "--state", "pending", "--label", "team=vision");

        Assert.Equal(0, result.ExitCode);
        var lines = result.Out.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["ID", "NAME", "STATE", "CREATED", "FINISHED", "LABELS"], lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var row = Assert.Single(lines.Skip(1));
        Assert.StartsWith(match.Id + " ", row, StringComparison.Ordinal);
        Assert.EndsWith("team=vision", row, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunLs_Limit_PagesUntilEnough()
    {
        for (var i = 0; i < 5; i++)
        {
            _service.AddRun(Spec("a"));
        }

        var result = await Cpctl("run", "ls", "--limit", "3", "-o", "json");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(["r-5", "r-4", "r-3"], JsonParser.Default.Parse<ListRunsResponse>(result.Out).Runs.Select(r => r.Id));
    }

    [Theory]
    [InlineData("--label", "team", "--label 'team' is not key=value")]
    [InlineData("--state", "bogus", "--state 'bogus' is not a run state")]
    [InlineData("--limit", "0", "--limit 0 is not positive")]
    public async Task RunLs_BadFilter_ExitsTwoNamingTheOption(string option, string value, string expected)
    {
        var result = await Cpctl("run", "ls", option, value);

        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        Assert.StartsWith("error: " + expected, result.Error, StringComparison.Ordinal);
        Assert.Equal(0, _service.Calls("ListRuns"));
    }

    [Theory]
    [InlineData("cancel", "CANCELLING")]
    [InlineData("pause", "PAUSED")]
    [InlineData("resume", "RUNNING")]
    [InlineData("retry", "RUNNING")]
    public async Task RunActions_PrintTheNewState(string action, string state)
    {
        var run = _service.AddRun(Spec("a"));

        var result = await Cpctl("run", action, run.Id);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal($"run {run.Id} {state}" + Environment.NewLine, result.Out);
    }

    [Fact]
    public async Task RunCancel_FinishedRun_ReportsFailedPreconditionAndExitsOne()
    {
        var run = _service.AddRun(Spec("a"));
        _service.Finish(run.Id, RunState.Succeeded);

        var result = await Cpctl("run", "cancel", run.Id);

        Assert.Equal(ExitCodes.Failure, result.ExitCode);
        Assert.EndsWith("(FAILED_PRECONDITION)" + Environment.NewLine, result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunApprove_Reject_SendsDecisionWhoAndComment()
    {
        var spec = Spec("a");
        spec.Steps.Add(new StepSpec { Id = "gate", Kind = StepKind.Gate, Needs = { "a" } });
        var run = _service.AddRun(spec);

        var result = await Cpctl("run", "approve", run.Id, "gate", "--reject", "--comment", "not today", "--by", "alice");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal($"gate gate of run {run.Id} rejected; run is PENDING" + Environment.NewLine, result.Out);
        var watched = await Cpctl("run", "get", run.Id, "-o", "json");
        var gate = JsonParser.Default.Parse<GetRunResponse>(watched.Out).Run.Steps.Single(s => s.Id == "gate");
        Assert.Equal("alice", gate.DecidedBy);
        Assert.Equal("not today", gate.DecisionComment);
    }

    [Fact]
    public async Task RunOutput_PrintsOrSavesTheBytes()
    {
        var run = _service.AddRun(Spec("a"));
        var file = Path.Combine(_dir, "out.txt");

        var printed = await Cpctl("run", "output", run.Id, "a");
        var saved = await Cpctl("run", "output", run.Id, "a", "--file", file);

        Assert.Equal("output of a\n", printed.Out);
        Assert.Equal(0, saved.ExitCode);
        Assert.Equal("output of a\n", await File.ReadAllTextAsync(file));
    }

    [Fact]
    public async Task Agents_LsAndDrain_ShowSlotsAndState()
    {
        _service.AddAgent(new V1.Agent { AgentId = "gpu-1", Host = "box", Slots = 4, UsedSlots = 1, State = AgentState.Connected, Queues = { "gpu" }, Frameworks = { "shell" } });

        var list = await Cpctl("agents", "ls");
        var drain = await Cpctl("agents", "drain", "gpu-1");
        var missing = await Cpctl("agents", "drain", "nope");

        Assert.Equal(0, list.ExitCode);
        var row = list.Out.Split(Environment.NewLine)[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["gpu-1", "box", "CONNECTED", "1/4", "gpu", "shell", "-", "-"], row);
        Assert.Equal("agent gpu-1 DRAINING (1 of 4 slots busy)" + Environment.NewLine, drain.Out);
        Assert.Equal("error: agent nope not found (NOT_FOUND)" + Environment.NewLine, missing.Error);
        Assert.Equal(ExitCodes.Failure, missing.ExitCode);
    }

    [Theory]
    [InlineData(new[] { "server", "--listen", "nonsense" }, "Listen 'nonsense' has no port; use HOST:PORT")]
    [InlineData(new[] { "server", "--listen", "example.com:7070" }, "Listen 'example.com:7070' has host 'example.com', which is not an IP address")]
    [InlineData(new[] { "server", "--redis", "6379" }, "Redis '6379' is not HOST:PORT")]
    [InlineData(new[] { "server", "--lisen", "127.0.0.1:7070" }, "unknown flag --lisen; did you mean --listen?")]
    [InlineData(new[] { "agent", "--slots", "0" }, "Slots is 0; set it between 1 and 10000 (from flag --slots)")]
    [InlineData(new[] { "agent", "--agent-id", "Bad_Id" }, "AgentId 'Bad_Id' must match")]
    [InlineData(new[] { "agent", "--labels", "zone" }, "Labels entry 'zone' is not key=value")]
    [InlineData(new[] { "agent", "--queues", "GPU" }, "Queues entry 'GPU' must match")]
    [InlineData(new[] { "agent", "--scheduler", "localhost:7070" }, "SchedulerAddress 'localhost:7070' is not an http:// or https:// address")]
    [InlineData(new[] { "--scheduler", "localhost:7070", "agent" }, "SchedulerAddress 'localhost:7070' is not an http:// or https:// address")]
    [InlineData(new[] { "agent", "--namespace", "Team_A" }, "Namespace 'Team_A' must match")]
    [InlineData(new[] { "--namespace", "Team_A", "agent" }, "Namespace 'Team_A' must match")]
    [InlineData(new[] { "-o", "json", "server" }, "unexpected argument '-o'")]
    public async Task HostCommands_BadOption_ExitTwoNamingIt(string[] args, string expected)
    {
        var result = await Cpctl(args);

        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        Assert.StartsWith("error: " + expected, result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dev_BadPipelineFile_FailsBeforeStartingAnything()
    {
        var path = WriteFile("dev.yaml", "steps:\n  - id: a\n    run_if: never\n");

        var result = await Cpctl("dev", path);

        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        Assert.StartsWith($"{path}:3:5: steps[0].run_if: 'never' is not one of", result.Error, StringComparison.Ordinal);
    }
}
