using System.CommandLine;
using ControlPlane.Client;
using ControlPlane.V1;
using ControlPlane.Hosting;
using Grpc.Core;

namespace ControlPlane.Cli.Internal;

/// <summary>The cpctl command tree, its global options, and the mapping of failures to one stderr line and an exit code.</summary>
internal static class Cpctl
{
    public const string DefaultScheduler = "http://127.0.0.1:7070";

    /// <summary>Parses and runs one command line; returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args, CliContext cli, bool handleTermination, CancellationToken cancellationToken)
    {
        if (HostCommands.Route(args) is { } daemon)
        {
            // The daemons own their signals (for good, so a late SIGTERM meets a live handler) and read their own settings;
            // System.CommandLine's termination handler would race them and outlive its token.
            var stop = handleTermination ? DaemonSignals.Install() : cancellationToken;
            return daemon.Command == "server"
                ? await HostEntryPoints.RunSchedulerAsync(daemon.Args, cli, stop).ConfigureAwait(false)
                : await HostEntryPoints.RunAgentAsync(daemon.Args, cli, stop).ConfigureAwait(false);
        }

        var globals = new GlobalOptions();
        var root = Build(cli, globals, handleTermination);
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                await cli.Error.WriteLineAsync("error: " + error.Message).ConfigureAwait(false);
            }

            await cli.Error.WriteLineAsync("Run 'cpctl --help' (or 'cpctl <command> --help') to see the usage.").ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        var configuration = new InvocationConfiguration
        {
            Output = cli.Out,
            Error = cli.Error,
            EnableDefaultExceptionHandler = false,

            // dev handles its own signals: the first Ctrl+C cancels its run and waits for it, the second exits at once
            // (server and agent never get here: see HostCommands.Route).
            ProcessTerminationTimeout = handleTermination && parse.CommandResult.Command.Name != "dev" ? TimeSpan.FromSeconds(5) : null,
        };
        return await parse.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
    }

    private static RootCommand Build(CliContext cli, GlobalOptions globals, bool handleTermination)
    {
        var root = new RootCommand(
            "cpctl: run the ControlPlane scheduler and agents, submit pipelines and follow their runs.\n" +
            "Exit codes: 0 success, 1 failure, 2 invalid input, 3 the run did not succeed (--wait, watch).");
        root.Options.Add(globals.Scheduler);
        root.Options.Add(globals.Token);
        root.Options.Add(globals.Namespace);
        root.Options.Add(globals.Ca);
        root.Options.Add(globals.Cert);
        root.Options.Add(globals.Key);
        root.Options.Add(globals.Output);

        var handlers = new CommandHandlers(cli, globals, handleTermination);
        root.Subcommands.Add(HostCommands.Server());
        root.Subcommands.Add(HostCommands.Agent());
        root.Subcommands.Add(HostCommands.Dev(handlers));
        root.Subcommands.Add(RunCommands.Build(handlers));
        root.Subcommands.Add(AgentCommands.Build(handlers));
        root.Subcommands.Add(AuthCommands.Build(handlers));
        root.Subcommands.Add(AuditCommands.Build(handlers));
        root.Subcommands.Add(SecretCommands.Build(handlers));
        root.Subcommands.Add(TopCommand.Build(handlers));

        // --namespace after the command: every group that calls the scheduler, except auth, whose token create|revoke
        // already take --namespace as the token's namespace (auth token ls takes it itself).
        foreach (var group in root.Subcommands.Where(c => c.Name is "run" or "agents" or "audit" or "secret" or "top"))
        {
            group.Options.Add(globals.CallNamespace);
        }

        return root;
    }

    /// <summary>Runs a command body, turning every failure into one clear stderr line and an exit code.</summary>
    public static async Task<int> GuardAsync(CliContext cli, Func<Task<int>> body, CancellationToken cancellationToken)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await cli.Error.WriteLineAsync("interrupted").ConfigureAwait(false);
            return ExitCodes.Interrupted;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
        {
            await cli.Error.WriteLineAsync("interrupted").ConfigureAwait(false);
            return ExitCodes.Interrupted;
        }
        catch (RpcException ex)
        {
            await cli.Error.WriteLineAsync(Describe(ex)).ConfigureAwait(false);
            return ex.StatusCode == StatusCode.InvalidArgument ? ExitCodes.InvalidInput : ExitCodes.Failure;
        }
        catch (PipelineFileException ex)
        {
            foreach (var error in ex.Errors)
            {
                await cli.Error.WriteLineAsync(error.ToString()).ConfigureAwait(false);
            }

            return ExitCodes.InvalidInput;
        }
        catch (CliUsageException ex)
        {
            await cli.Error.WriteLineAsync("error: " + ex.Message).ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }
        catch (ArgumentException ex)
        {
            await cli.Error.WriteLineAsync("error: " + ex.Message).ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            await cli.Error.WriteLineAsync("error: " + ex.Message).ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }
    }

    /// <summary><c>error: run r-123 not found (NOT_FOUND)</c>, with a hint where one helps.</summary>
    public static string Describe(RpcException ex)
    {
        if (DescribeAuthFailure(ex) is { } auth)
        {
            return auth;
        }

        var code = TextRender.Name(ex.StatusCode);
        var detail = ex.Status.Detail.Length > 0 ? ex.Status.Detail : "the call failed";
        var hint = (ex.StatusCode, ex.GetErrorReason()) switch
        {
            (StatusCode.Unavailable, ErrorReason.SchedulerShuttingDown) => "; the scheduler is shutting down: run the command again, or point --scheduler at another replica",
            (StatusCode.Unavailable, ErrorReason.StoreUnavailable) => "; the scheduler cannot reach its Redis store: run the command again once Redis is back",
            (StatusCode.Unavailable, _) => "; is the scheduler running? Start one with 'cpctl server' or point --scheduler / CP_SCHEDULER at it",
            (StatusCode.NotFound, ErrorReason.RunNotFound) => "; 'cpctl run ls' lists the runs",
            (StatusCode.Unauthenticated, _) => "; pass a token with --token or CP_TOKEN",
            (StatusCode.PermissionDenied, _) => "; use a token whose role allows this (cpctl auth token create)",
            (StatusCode.Unimplemented, _) => "; the address may not be a ControlPlane scheduler",
            (StatusCode.DeadlineExceeded, _) => "; the scheduler did not answer in time",
            _ => string.Empty,
        };
        return $"error: {detail} ({code}){hint}";
    }

    /// <summary>One line per refused credential, from the status's ErrorInfo (which token, what is wrong, what to do).</summary>
    private static string? DescribeAuthFailure(RpcException ex)
    {
        var info = ex.GetErrorInfo();
        var token = info?.Metadata.GetValueOrDefault("token_name") ?? "";
        var code = TextRender.Name(ex.StatusCode);
        var line = ex.GetErrorReason() switch
        {
            ErrorReason.TokenMissing => "no token given: pass --token or set CP_TOKEN",
            ErrorReason.TokenMalformed => "the token given (--token or CP_TOKEN) is malformed: pass it exactly as 'cpctl auth token create' printed it",
            ErrorReason.TokenUnknown => "the scheduler does not know the token given (--token or CP_TOKEN); check it, or create one with cpctl auth token create",
            ErrorReason.TokenRevoked => $"the scheduler refused the token '{token}' (revoked); create a new one with cpctl auth token create",
            ErrorReason.TokenExpired => $"the scheduler refused the token '{token}' (expired); create a new one with cpctl auth token create",
            ErrorReason.RoleNotAllowed =>
                $"the token '{token}' (role {info!.Metadata.GetValueOrDefault("role")}) may not call {info.Metadata.GetValueOrDefault("method")?.TrimStart('/')}; use a token whose role allows it (README: Authentication)",
            ErrorReason.NamespaceNotAllowed when info!.Metadata.GetValueOrDefault("requested") is { } requested =>
                $"the token '{token}' belongs to namespace '{info.Metadata.GetValueOrDefault("namespace")}' and may not act in namespace '{requested}'; drop --namespace / CP_NAMESPACE to act in '{info.Metadata.GetValueOrDefault("namespace")}', or use a token of namespace '{requested}'",
            ErrorReason.NamespaceNotAllowed =>
                $"the token '{token}' belongs to namespace '{info!.Metadata.GetValueOrDefault("namespace")}', which this scheduler does not serve; use a token of its namespace",
            ErrorReason.AgentIdNotAllowed => $"the token '{token}' may not connect as agent '{info!.Metadata.GetValueOrDefault("agent_id")}'",
            _ => null,
        };
        return line is null ? null : $"error: {line} ({code})";
    }
}
