using System.CommandLine;
using System.Text.RegularExpressions;
using ControlPlane.Client;
using Google.Protobuf;
using Grpc.Core;

namespace ControlPlane.Cli.Internal;

/// <summary>What every command body needs: the console, the resolved global options, a client factory.</summary>
internal sealed partial class CommandHandlers
{
    private static readonly JsonFormatter IndentedJson = new(JsonFormatter.Settings.Default.WithIndentation());
    private static readonly JsonFormatter LineJson = new(JsonFormatter.Settings.Default);

    private readonly List<ControlPlaneClient> _clients = [];

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
        command.SetAction(async (parse, cancellationToken) =>
        {
            var exit = await Cpctl.GuardAsync(Cli, () => ExplainTransportAsync(parse, () => body(new Invocation(this, parse), cancellationToken), cancellationToken), cancellationToken).ConfigureAwait(false);
            await NoticeAuthenticationOffAsync(parse).ConfigureAwait(false);
            return exit;
        });

    /// <summary>A call that could not connect because of TLS (plain text against TLS, an untrusted certificate) fails with one line saying what to pass.</summary>
    private async Task<int> ExplainTransportAsync(ParseResult parse, Func<Task<int>> body, CancellationToken cancellationToken)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (RpcException ex) when (ex.Status.DebugException is HttpRequestException && !cancellationToken.IsCancellationRequested)
        {
            using var client = CreateClient(parse);
            var hint = await client.DiagnoseConnectionAsync(ex, cancellationToken).ConfigureAwait(false);
            if (hint is null)
            {
                throw;
            }

            await Cli.Error.WriteLineAsync("error: " + hint).ConfigureAwait(false);
            return ExitCodes.Failure;
        }
    }

    /// <summary>One stderr line when a scheduler this command talked to said it checks no credentials (cp-auth: off).</summary>
    private async Task NoticeAuthenticationOffAsync(ParseResult parse)
    {
        List<ControlPlaneClient> clients;
        lock (_clients)
        {
            clients = [.. _clients];
            _clients.Clear();
        }

        if (clients.Any(c => c.SchedulerAuthenticationOff))
        {
            await Cli.Error.WriteLineAsync(
                $"cpctl: note: the scheduler at {SchedulerAddress(parse)} runs with authentication off: it checks no token, and anyone who reaches it may do anything").ConfigureAwait(false);
        }
    }

    public string SchedulerAddress(ParseResult parse) =>
        parse.GetValue(Globals.Scheduler) ?? Cli.Variable("CP_SCHEDULER") ?? Cpctl.DefaultScheduler;

    public ControlPlaneClient CreateClient(ParseResult parse)
    {
        var client = new ControlPlaneClient(new ControlPlaneClientOptions
        {
            Address = SchedulerAddress(parse),
            BearerToken = parse.GetValue(Globals.Token) ?? Cli.Variable("CP_TOKEN"),
            Namespace = Namespace(parse),
            CaFile = parse.GetValue(Globals.Ca) ?? Cli.Variable("CP_CA"),
            ClientCertificateFile = parse.GetValue(Globals.Cert) ?? Cli.Variable("CP_CERT"),
            ClientKeyFile = parse.GetValue(Globals.Key) ?? Cli.Variable("CP_KEY"),

            // A person is waiting: a few quick retries ride out a blip without stalling on a scheduler that is down.
            MaxRetryAttempts = 3,
        });
        lock (_clients)
        {
            _clients.Add(client);
        }

        return client;
    }

    /// <summary>
    /// The namespace the calls act in: --namespace (after the command, else before it), else CP_NAMESPACE, else null
    /// (the token's). After <c>auth token create|revoke</c>, --namespace is their own option (the token's namespace).
    /// </summary>
    private string? Namespace(ParseResult parse)
    {
        var flag = parse.GetValue(Globals.CallNamespace) ?? parse.GetValue(Globals.Namespace);
        var (value, source) = flag is not null ? (flag, "--namespace") : (Cli.Variable("CP_NAMESPACE"), "CP_NAMESPACE");
        if (value is not null && !NamespacePattern().IsMatch(value))
        {
            throw new CliUsageException(
                $"{source} '{value}' is not a namespace name; use [a-z0-9][a-z0-9._-]{{0,62}} (lower-case letters, digits, '.', '_' or '-', e.g. team-a), or drop it to act in the token's namespace");
        }

        return value;
    }

    public bool Json(ParseResult parse) => parse.GetValue(Globals.Output) == "json";

    public Task WriteJsonAsync(IMessage message) => Cli.Out.WriteLineAsync(IndentedJson.Format(message));

    public Task WriteJsonLineAsync(IMessage message) => Cli.Out.WriteLineAsync(LineJson.Format(message));

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$")]
    private static partial Regex NamespacePattern();
}
