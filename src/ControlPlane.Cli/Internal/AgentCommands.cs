using System.CommandLine;
using ControlPlane.V1;

namespace ControlPlane.Cli.Internal;

/// <summary><c>cpctl agents ls|drain</c>.</summary>
internal static class AgentCommands
{
    public static Command Build(CommandHandlers handlers)
    {
        var agents = new Command("agents", "List and drain agents.");

        var list = new Command("ls", "List the agents the scheduler knows, with their slots and queues.");
        handlers.Handle(list, async (inv, ct) =>
        {
            using var client = inv.CreateClient();
            var all = await client.ListAgentsAsync(ct).ConfigureAwait(false);
            if (inv.Json)
            {
                var response = new ListAgentsResponse();
                response.Agents.AddRange(all);
                await inv.WriteJsonAsync(response).ConfigureAwait(false);
            }
            else
            {
                TextRender.AgentList(inv.Out, all);
            }

            return ExitCodes.Success;
        });
        agents.Subcommands.Add(list);

        var drain = new Command("drain", "Tell an agent to finish what it runs and take nothing new.");
        var id = new Argument<string>("ID") { Description = "The agent's id." };
        drain.Arguments.Add(id);
        handlers.Handle(drain, async (inv, ct) =>
        {
            using var client = inv.CreateClient();
            var agent = await client.DrainAgentAsync(inv.Get(id), ct).ConfigureAwait(false);
            if (inv.Json)
            {
                await inv.WriteJsonAsync(new DrainAgentResponse { Agent = agent }).ConfigureAwait(false);
            }
            else
            {
                await inv.Out.WriteLineAsync($"agent {agent.AgentId} {TextRender.Name(agent.State)} ({agent.UsedSlots} of {agent.Slots} slots busy)").ConfigureAwait(false);
            }

            return ExitCodes.Success;
        });
        agents.Subcommands.Add(drain);
        return agents;
    }
}
