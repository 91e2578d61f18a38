using System.CommandLine;
using ControlPlane.V1;

namespace ControlPlane.Cli.Internal;

/// <summary><c>cpctl audit ls</c>: the namespace's audit trail through AuditService (admin role), newest first.</summary>
internal static class AuditCommands
{
    /// <summary>Entries one page of AuditService returns at most.</summary>
    private const int PageLimit = 1000;

    public static Command Build(CommandHandlers handlers)
    {
        var audit = new Command("audit", "Read the audit trail: who submitted, cancelled, approved, drained, set limits, made tokens or secrets (needs an admin token).");
        audit.Subcommands.Add(List(handlers));
        return audit;
    }

    private static Command List(CommandHandlers handlers)
    {
        var command = new Command("ls", "List audit entries, newest first: time, actor, role, action, target, outcome, detail.");
        var action = new Option<string?>("--action") { Description = "Only this action, e.g. run.submit, gate.approve, token.create, secret.set.", HelpName = "ACTION" };
        var limit = new Option<int>("--limit") { Description = "How many entries, newest first. Default: 50.", HelpName = "N", DefaultValueFactory = _ => 50 };
        command.Options.Add(action);
        command.Options.Add(limit);
        handlers.Handle(command, async (inv, ct) =>
        {
            var wanted = inv.Get(limit);
            if (wanted is < 1 or > 100_000)
            {
                throw new CliUsageException($"--limit {wanted} is out of range; use 1 to 100000");
            }

            using var client = inv.CreateClient();
            var response = new ListAuditResponse();
            var cursor = "";
            do
            {
                var page = await client.ListAuditAsync(
                    new ListAuditRequest { Limit = Math.Min(PageLimit, wanted - response.Entries.Count), Cursor = cursor, Action = inv.Get(action) ?? "" },
                    ct).ConfigureAwait(false);
                response.Entries.AddRange(page.Entries);
                cursor = page.NextCursor;
            }
            while (cursor.Length > 0 && response.Entries.Count < wanted);
            response.NextCursor = cursor;

            if (inv.Json)
            {
                await inv.WriteJsonAsync(response).ConfigureAwait(false);
                return ExitCodes.Success;
            }

            if (response.Entries.Count == 0)
            {
                await inv.Out.WriteLineAsync("no audit entries").ConfigureAwait(false);
                return ExitCodes.Success;
            }

            var table = new TextTable("TIME", "ACTOR", "ROLE", "ACTION", "TARGET", "OUTCOME", "DETAIL");
            foreach (var e in response.Entries)
            {
                table.Add(
                    TextRender.Time(e.Time),
                    e.Actor,
                    e.Role.Length == 0 ? "-" : e.Role,
                    e.Action,
                    e.Target,
                    TextRender.Name(e.Outcome).ToLowerInvariant(),
                    e.Detail.Length == 0 ? "-" : e.Detail);
            }

            table.Write(inv.Out);
            return ExitCodes.Success;
        });
        return command;
    }
}
