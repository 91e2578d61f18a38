using System.CommandLine;
using ControlPlane.Client;
using Google.Protobuf;

namespace ControlPlane.Cli.Internal;

/// <summary>What every command body needs: the console, the resolved global options, a client factory.</summary>
internal sealed class CommandHandlers
{
    private static readonly JsonFormatter IndentedJson = new(JsonFormatter.Settings.Default.WithIndentation());
    private static readonly JsonFormatter LineJson = new(JsonFormatter.Settings.Default);

    public CommandHandlers(CliContext cli, GlobalOptions globals, bool handleTermination)
    {
        Cli = cli;
        Globals = globals;
        HandleTermination = handleTermination;
    }

    /// <summary>Whether this process owns its signals (Ctrl+C, SIGTERM); false when cpctl runs inside a test.</summary>
    public bool HandleTermination { get; }

    public CliContext Cli { get; }

    public GlobalOptions Globals { get; }

    /// <summary>Sets a command's action: the body runs under <see cref="Cpctl.GuardAsync"/>.</summary>
    public void Handle(Command command, Func<Invocation, CancellationToken, Task<int>> body) =>
        command.SetAction((parse, cancellationToken) => Cpctl.GuardAsync(Cli, () => body(new Invocation(this, parse), cancellationToken), cancellationToken));

    public string SchedulerAddress(ParseResult parse) =>
        parse.GetValue(Globals.Scheduler) ?? Cli.Variable("CP_SCHEDULER") ?? Cpctl.DefaultScheduler;

    public ControlPlaneClient CreateClient(ParseResult parse) => new(new ControlPlaneClientOptions
    {
        Address = SchedulerAddress(parse),
        BearerToken = parse.GetValue(Globals.Token) ?? Cli.Variable("CP_TOKEN"),

        // A person is waiting: a few quick retries ride out a blip without stalling on a scheduler that is down.
        MaxRetryAttempts = 3,
    });

    public bool Json(ParseResult parse) => parse.GetValue(Globals.Output) == "json";

    public Task WriteJsonAsync(IMessage message) => Cli.Out.WriteLineAsync(IndentedJson.Format(message));

    public Task WriteJsonLineAsync(IMessage message) => Cli.Out.WriteLineAsync(LineJson.Format(message));
}
