using System.CommandLine;
using ControlPlane.V1;

namespace ControlPlane.Cli.Internal;

/// <summary><c>cpctl secret set|ls|rm</c>: the namespace's secrets through SecretService (admin role). No command prints a value.</summary>
internal static class SecretCommands
{
    /// <summary>Largest value read from stdin or a file; the scheduler refuses anything above 60 KiB with the reason.</summary>
    private const int MaxRead = 64 * 1024;

    public static Command Build(CommandHandlers handlers)
    {
        var secret = new Command("secret", "Manage the secrets steps name with secrets: [...] (needs an admin token).");
        secret.Subcommands.Add(Set(handlers));
        secret.Subcommands.Add(List(handlers));
        secret.Subcommands.Add(Remove(handlers));
        return secret;
    }

    private static Command Set(CommandHandlers handlers)
    {
        var command = new Command("set", "Create or replace a secret; its value comes from stdin, or from --from-file.");
        var name = new Argument<string>("NAME") { Description = "The secret's name, e.g. db-password (a shell step sees it as DB_PASSWORD)." };
        var fromFile = new Option<string?>("--from-file") { Description = "Read the value from this file instead of stdin (taken as is; one trailing newline of stdin is dropped).", HelpName = "PATH" };
        var queues = new Option<string?>("--queues") { Description = "Only steps on these queues may use it, comma-separated. Default: every queue.", HelpName = "Q1,Q2" };
        command.Arguments.Add(name);
        command.Options.Add(fromFile);
        command.Options.Add(queues);
        handlers.Handle(command, async (inv, ct) =>
        {
            byte[] value;
            if (inv.Get(fromFile) is { } path)
            {
                try
                {
                    value = new FileInfo(path).Length > MaxRead
                        ? throw new CliUsageException($"--from-file '{path}' is larger than {MaxRead / 1024} KiB; a secret holds at most 60 KiB")
                        : await File.ReadAllBytesAsync(path, ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    throw new CliUsageException($"--from-file '{path}' cannot be read: {ex.Message}");
                }
            }
            else
            {
                value = await ReadInputAsync(inv.Cli.OpenInput(), ct).ConfigureAwait(false);
            }

            var queueList = (inv.Get(queues) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            using var client = inv.CreateClient();
            var response = await client.SetSecretAsync(inv.Get(name), value, queueList, ct).ConfigureAwait(false);
            if (inv.Json)
            {
                await inv.WriteJsonAsync(response).ConfigureAwait(false);
                return ExitCodes.Success;
            }

            var info = response.Info;
            var scope = info.Queues.Count == 0 ? "every queue" : "queues " + string.Join(", ", info.Queues);
            await inv.Out.WriteLineAsync($"secret '{info.Name}' {(response.Replaced ? "replaced" : "created")} ({value.Length} bytes, {scope})").ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command List(CommandHandlers handlers)
    {
        var command = new Command("ls", "List the secrets: name, queues, dates. Never a value.");
        handlers.Handle(command, async (inv, ct) =>
        {
            using var client = inv.CreateClient();
            var secrets = await client.ListSecretsAsync(ct).ConfigureAwait(false);
            if (inv.Json)
            {
                var response = new ListSecretsResponse();
                response.Secrets.AddRange(secrets);
                await inv.WriteJsonAsync(response).ConfigureAwait(false);
                return ExitCodes.Success;
            }

            if (secrets.Count == 0)
            {
                await inv.Out.WriteLineAsync("no secrets").ConfigureAwait(false);
                return ExitCodes.Success;
            }

            var table = new TextTable("NAME", "QUEUES", "CREATED", "UPDATED");
            foreach (var s in secrets)
            {
                table.Add(s.Name, s.Queues.Count == 0 ? "*" : string.Join(",", s.Queues), TextRender.Time(s.CreatedAt), TextRender.Time(s.UpdatedAt));
            }

            table.Write(inv.Out);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Remove(CommandHandlers handlers)
    {
        var command = new Command("rm", "Delete a secret; steps of runs already submitted that need it fail from then on.");
        var name = new Argument<string>("NAME") { Description = "The secret's name (cpctl secret ls)." };
        command.Arguments.Add(name);
        handlers.Handle(command, async (inv, ct) =>
        {
            using var client = inv.CreateClient();
            var info = await client.DeleteSecretAsync(inv.Get(name), ct).ConfigureAwait(false);
            if (inv.Json)
            {
                await inv.WriteJsonAsync(new DeleteSecretResponse { Info = info }).ConfigureAwait(false);
            }
            else
            {
                await inv.Out.WriteLineAsync($"secret '{info.Name}' deleted").ConfigureAwait(false);
            }

            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Standard input, at most <see cref="MaxRead"/> bytes, without one trailing newline (echo adds it).</summary>
    private static async Task<byte[]> ReadInputAsync(Stream input, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await input.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > MaxRead)
            {
                throw new CliUsageException($"the value on stdin is larger than {MaxRead / 1024} KiB; a secret holds at most 60 KiB");
            }
        }

        var value = buffer.ToArray();
        var end = value.Length;
        if (end > 0 && value[end - 1] == '\n')
        {
            end--;
            if (end > 0 && value[end - 1] == '\r')
            {
                end--;
            }
        }

        return value[..end];
    }
}
