using System.CommandLine;

namespace ControlPlane.Cli.Internal;

/// <summary><c>cpctl server</c>, <c>cpctl agent</c> and <c>cpctl dev</c>: the long-running processes.</summary>
internal static class HostCommands
{
    /// <summary>
    /// <c>cpctl server</c>, listed in <c>cpctl --help</c>. It never reaches System.CommandLine: <see cref="Route"/> hands
    /// its arguments to the scheduler daemon, which owns its settings, its --help and its signals.
    /// </summary>
    public static Command Server() =>
        new("server", "Run a scheduler replica. Takes cp-scheduler's settings: flags, CP_ variables, --config FILE (cpctl server --help).");

    /// <summary><c>cpctl agent</c>, listed in <c>cpctl --help</c>; routed to the agent daemon like <see cref="Server"/>.</summary>
    public static Command Agent() =>
        new("agent", "Run an agent: connect to the scheduler and run the steps it assigns. Takes cp-agent's settings (cpctl agent --help).");

    /// <summary>
    /// The daemon command ("server" or "agent") and its arguments, when <paramref name="args"/> runs one; null otherwise.
    /// Global options written before the command go to the daemon too: --scheduler, --namespace, --ca, --cert and --key are
    /// agent settings (--namespace is also the scheduler's default namespace), the others fail there as unknown flags.
    /// </summary>
    public static (string Command, string[] Args)? Route(string[] args)
    {
        var i = 0;
        while (i < args.Length)
        {
            var eq = args[i].IndexOf('=', StringComparison.Ordinal);
            var name = eq > 0 ? args[i][..eq] : args[i];
            if (name is not ("--scheduler" or "--token" or "--namespace" or "--ca" or "--cert" or "--key" or "--output" or "-o"))
            {
                break;
            }

            i += eq > 0 ? 1 : 2;
        }

        if (i >= args.Length || args[i] is not ("server" or "agent"))
        {
            return null;
        }

        return (args[i], [.. args[..i], .. args[(i + 1)..]]);
    }

    public static Command Dev(CommandHandlers handlers)
    {
        var command = new Command("dev", $"Run scheduler, agent and an in-memory store in this process, and run a pipeline file with live progress (default: {DevPipelineLocator.DefaultPipeline}).");
        var file = new Argument<string?>("FILE") { Description = $"The pipeline file to run, relative to the current directory or the repository root. Default: {DevPipelineLocator.DefaultPipeline}.", Arity = ArgumentArity.ZeroOrOne };
        var listen = new Option<string>("--listen") { Description = "Address to serve gRPC on; port 0 picks a free one.", HelpName = "HOST:PORT", DefaultValueFactory = _ => "127.0.0.1:7070" };
        var httpListen = new Option<string?>("--http-listen") { Description = "Address of the dashboard, JSON API and /metrics; port 0 picks a free one, off serves none. Default: --listen's address, port + 10 (127.0.0.1:7080).", HelpName = "HOST:PORT" };
        var slots = new Option<int>("--slots") { Description = "Slots of the in-process agent.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var keepRunning = new Option<bool>("--keep-running") { Description = "After the run, keep the scheduler and agent up until Ctrl+C, so other cpctl commands can use them." };
        command.Arguments.Add(file);
        command.Options.Add(listen);
        command.Options.Add(httpListen);
        command.Options.Add(slots);
        command.Options.Add(keepRunning);
        handlers.Handle(command, async (inv, ct) =>
        {
            var listenText = inv.Get(listen)!;
            ArgumentParsing.Endpoint(listenText, "--listen");
            var httpListenText = inv.Get(httpListen);
            if (httpListenText is not null && !httpListenText.Trim().Equals("off", StringComparison.OrdinalIgnoreCase))
            {
                ArgumentParsing.Endpoint(httpListenText, "--http-listen");
            }

            if (inv.Get(slots) is < 1 or > 10_000)
            {
                throw new CliUsageException($"--slots {inv.Get(slots)} is out of range; use a number from 1 to 10000");
            }

            var path = DevPipelineLocator.Resolve(inv.Parse.GetValue(file), Directory.GetCurrentDirectory(), AppContext.BaseDirectory);

            // Check the file before starting anything, so a typo fails fast with its line number.
            await ControlPlane.Client.PipelineFile.LoadAsync(path, ct).ConfigureAwait(false);
            var settings = new DevSettings(path, listenText, httpListenText, inv.Get(slots), inv.Get(keepRunning), inv.HandleTermination);
            return await HostEntryPoints.RunDevAsync(settings, inv.Cli, ct).ConfigureAwait(false);
        });
        return command;
    }
}
