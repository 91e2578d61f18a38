using System.CommandLine;
using ControlPlane.Internal;
using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Cli.Internal;

/// <summary><c>cpctl auth token create|ls|revoke</c>: bearer tokens through AuthService (admin role).</summary>
internal static class AuthCommands
{
    private static readonly string RoleNames = "reader, submitter, approver, operator, admin or agent";

    public static Command Build(CommandHandlers handlers)
    {
        var auth = new Command("auth", "Manage the scheduler's bearer tokens (needs an admin token).");
        var token = new Command("token", "Create, list and revoke bearer tokens.");
        auth.Subcommands.Add(token);
        token.Subcommands.Add(Create(handlers));
        token.Subcommands.Add(List(handlers));
        token.Subcommands.Add(Revoke(handlers));
        return auth;
    }

    private static Command Create(CommandHandlers handlers)
    {
        var command = new Command("create", "Create a token and print it alone on the last line of stdout (it is shown only this once).");
        var role = new Option<string>("--role") { Description = $"What the token may do: {RoleNames}.", Required = true, HelpName = "ROLE" };
        var ns = new Option<string?>("--namespace") { Description = "The token's namespace: the one it acts in, or * (admin, operator) for every one. Default: * for admin, else the scheduler's. (The call's own namespace: CP_NAMESPACE, or cpctl --namespace NS auth ...)", HelpName = "NS" };
        var agentId = new Option<string?>("--agent-id") { Description = "Agent tokens: the agent id it may connect as, or a prefix ending in * (gpu-*). Default: any.", HelpName = "ID_OR_GLOB" };
        var ttl = new Option<string?>("--ttl") { Description = "Lifetime, e.g. 90m, 24h or 720h. Default: no expiry.", HelpName = "DURATION" };
        var name = new Option<string?>("--name") { Description = "Its name, unique in its namespace. Default: ROLE-<random>.", HelpName = "NAME" };
        command.Options.Add(role);
        command.Options.Add(ns);
        command.Options.Add(agentId);
        command.Options.Add(ttl);
        command.Options.Add(name);
        handlers.Handle(command, async (inv, ct) =>
        {
            var request = new CreateTokenRequest
            {
                Role = ParseRole(inv.Get(role)!),
                Namespace = inv.Get(ns) ?? "",
                AgentId = inv.Get(agentId) ?? "",
                Name = inv.Get(name) ?? "",
            };
            if (inv.Get(ttl) is { } text)
            {
                request.Ttl = DurationText.TryParse(text, out var lifetime) && lifetime > TimeSpan.Zero
                    ? Duration.FromTimeSpan(lifetime)
                    : throw new CliUsageException($"--ttl '{text}' is not a duration; use e.g. --ttl 90m or --ttl 720h");
            }

            using var client = inv.CreateClient();
            var created = await client.CreateTokenAsync(request, ct).ConfigureAwait(false);
            if (inv.Json)
            {
                await inv.WriteJsonAsync(created).ConfigureAwait(false);
                return ExitCodes.Success;
            }

            var info = created.Info;
            var expires = info.ExpiresAt is null ? "never expires" : "expires " + TextRender.Time(info.ExpiresAt);
            var agents = info.AgentId.Length == 0 ? "" : $", agent id {info.AgentId}";
            await inv.Error.WriteLineAsync($"created token '{info.Name}': role {Role(info.Role)}, namespace {info.Namespace}{agents}, {expires}. It is shown once; keep it in a file only its user can read.").ConfigureAwait(false);
            await inv.Out.WriteLineAsync(created.Token).ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command List(CommandHandlers handlers)
    {
        var command = new Command("ls", "List the tokens: name, role, namespace, agent id, dates. Never the secrets.");
        command.Options.Add(handlers.Globals.CallNamespace);
        handlers.Handle(command, async (inv, ct) =>
        {
            using var client = inv.CreateClient();
            var tokens = await client.ListTokensAsync(ct).ConfigureAwait(false);
            if (inv.Json)
            {
                var response = new ListTokensResponse();
                response.Tokens.AddRange(tokens);
                await inv.WriteJsonAsync(response).ConfigureAwait(false);
                return ExitCodes.Success;
            }

            if (tokens.Count == 0)
            {
                await inv.Out.WriteLineAsync("no tokens").ConfigureAwait(false);
                return ExitCodes.Success;
            }

            var table = new TextTable("NAME", "ROLE", "NAMESPACE", "AGENT ID", "CREATED", "EXPIRES", "REVOKED");
            foreach (var t in tokens)
            {
                table.Add(
                    t.Name,
                    Role(t.Role),
                    t.Namespace,
                    t.AgentId.Length == 0 ? "-" : t.AgentId,
                    TextRender.Time(t.CreatedAt),
                    t.ExpiresAt is null ? "never" : TextRender.Time(t.ExpiresAt),
                    t.RevokedAt is null ? "-" : TextRender.Time(t.RevokedAt));
            }

            table.Write(inv.Out);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Revoke(CommandHandlers handlers)
    {
        var command = new Command("revoke", "Revoke a token by name; calls carrying it fail within seconds.");
        var name = new Argument<string>("NAME") { Description = "The token's name (cpctl auth token ls)." };
        var ns = new Option<string?>("--namespace") { Description = "The token's namespace, when several hold the name. (The call's own namespace: CP_NAMESPACE, or cpctl --namespace NS auth ...)", HelpName = "NS" };
        command.Arguments.Add(name);
        command.Options.Add(ns);
        handlers.Handle(command, async (inv, ct) =>
        {
            using var client = inv.CreateClient();
            var info = await client.RevokeTokenAsync(inv.Get(name), inv.Get(ns), ct).ConfigureAwait(false);
            if (inv.Json)
            {
                await inv.WriteJsonAsync(new RevokeTokenResponse { Info = info }).ConfigureAwait(false);
            }
            else
            {
                await inv.Out.WriteLineAsync($"token '{info.Name}' (namespace {info.Namespace}) revoked").ConfigureAwait(false);
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private static TokenRole ParseRole(string text)
    {
        var name = text.Trim().ToUpperInvariant().Replace("TOKEN_ROLE_", "", StringComparison.Ordinal);
        foreach (var role in System.Enum.GetValues<TokenRole>().Where(r => r != TokenRole.Unspecified))
        {
            if (TextRender.Name(role) == name)
            {
                return role;
            }
        }

        throw new CliUsageException($"--role '{text}' is not a role; use {RoleNames}");
    }

    private static string Role(TokenRole role) => TextRender.Name(role).ToLowerInvariant();
}
