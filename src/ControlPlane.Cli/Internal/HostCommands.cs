using System.CommandLine;
using System.Text.RegularExpressions;

namespace ControlPlane.Cli.Internal;

/// <summary><c>cpctl server</c>, <c>cpctl agent</c> and <c>cpctl dev</c>: the long-running processes.</summary>
internal static partial class HostCommands
{
    public static Command Server(CommandHandlers handlers)
    {
        var command = new Command("server", "Run a scheduler replica.");
        var listen = new Option<string>("--listen") { Description = "Address to serve gRPC on (h2c).", HelpName = "HOST:PORT", DefaultValueFactory = _ => "127.0.0.1:7070" };
        var redis = new Option<string?>("--redis") { Description = "Redis holding the state, for several replicas and restarts. Default: the embedded in-memory store.", HelpName = "HOST:PORT" };
        command.Options.Add(listen);
        command.Options.Add(redis);
        handlers.Handle(command, (inv, ct) =>
        {
            var listenText = inv.Get(listen)!;
            ArgumentParsing.Endpoint(listenText, "--listen");
            var redisText = inv.Get(redis);
            if (redisText is not null)
            {
                ArgumentParsing.HostPort(redisText, "--redis");
            }

            var settings = new SchedulerHostSettings(listenText, redisText);
            return HostEntryPoints.RunSchedulerAsync(settings, inv.Cli, ct);
        });
        return command;
    }

    public static Command Agent(CommandHandlers handlers)
    {
        var command = new Command("agent", "Run an agent: connect to the scheduler (--scheduler) and run the steps it assigns.");
        var id = new Option<string?>("--id") { Description = "Stable agent id, [a-z0-9][a-z0-9._-]{0,62}. Default: the host name." };
        var slots = new Option<int>("--slots") { Description = "Steps run at once. Default: the processor count.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var queues = new Option<string[]>("--queues") { Description = "Queues to take steps from, comma-separated. Default: default.", HelpName = "a,b" };
        var labels = new Option<string[]>("--labels") { Description = "Labels announced to the scheduler, k=v, comma-separated or repeated.", HelpName = "k=v" };
        command.Options.Add(id);
        command.Options.Add(slots);
        command.Options.Add(queues);
        command.Options.Add(labels);
        handlers.Handle(command, (inv, ct) =>
        {
            var agentId = inv.Get(id);
            if (agentId is not null && !IdPattern().IsMatch(agentId))
            {
                throw new CliUsageException($"--id '{agentId}' is not a valid agent id; use lower-case letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. --id gpu-box-1");
            }

            var slotCount = inv.Get(slots);
            if (slotCount is < 1 or > 10_000)
            {
                throw new CliUsageException($"--slots {slotCount} is out of range; use a number from 1 to 10000");
            }

            var queueList = ArgumentParsing.List(inv.Get(queues));
            foreach (var queue in queueList.Where(q => !IdPattern().IsMatch(q)))
            {
                throw new CliUsageException($"--queues entry '{queue}' is not a valid queue name; use lower-case letters, digits, '.', '_' or '-'");
            }

            var settings = new AgentHostSettings(
                inv.SchedulerAddress,
                agentId,
                slotCount,
                queueList.Count == 0 ? ["default"] : queueList,
                ArgumentParsing.Labels(inv.Get(labels), "--labels"));
            if (!Uri.TryCreate(settings.SchedulerAddress, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
            {
                throw new CliUsageException($"--scheduler '{settings.SchedulerAddress}' is not an http:// or https:// URL; use e.g. --scheduler http://127.0.0.1:7070");
            }

            return HostEntryPoints.RunAgentAsync(settings, inv.Cli, ct);
        });
        return command;
    }

    public static Command Dev(CommandHandlers handlers)
    {
        var command = new Command("dev", $"Run scheduler, agent and an in-memory store in this process, and run a pipeline file with live progress (default: {DevPipelineLocator.DefaultPipeline}).");
        var file = new Argument<string?>("FILE") { Description = $"The pipeline file to run, relative to the current directory or the repository root. Default: {DevPipelineLocator.DefaultPipeline}.", Arity = ArgumentArity.ZeroOrOne };
        var listen = new Option<string>("--listen") { Description = "Address to serve gRPC on; port 0 picks a free one.", HelpName = "HOST:PORT", DefaultValueFactory = _ => "127.0.0.1:7070" };
        var slots = new Option<int>("--slots") { Description = "Slots of the in-process agent.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var keepRunning = new Option<bool>("--keep-running") { Description = "After the run, keep the scheduler and agent up until Ctrl+C, so other cpctl commands can use them." };
        command.Arguments.Add(file);
        command.Options.Add(listen);
        command.Options.Add(slots);
        command.Options.Add(keepRunning);
        handlers.Handle(command, async (inv, ct) =>
        {
            var listenText = inv.Get(listen)!;
            ArgumentParsing.Endpoint(listenText, "--listen");
            if (inv.Get(slots) is < 1 or > 10_000)
            {
                throw new CliUsageException($"--slots {inv.Get(slots)} is out of range; use a number from 1 to 10000");
            }

            var path = DevPipelineLocator.Resolve(inv.Parse.GetValue(file), Directory.GetCurrentDirectory(), AppContext.BaseDirectory);

            // Check the file before starting anything, so a typo fails fast with its line number.
            await ControlPlane.Client.PipelineFile.LoadAsync(path, ct).ConfigureAwait(false);
            var settings = new DevSettings(path, listenText, inv.Get(slots), inv.Get(keepRunning), inv.HandleTermination);
            return await HostEntryPoints.RunDevAsync(settings, inv.Cli, ct).ConfigureAwait(false);
        });
        return command;
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex IdPattern();
}
