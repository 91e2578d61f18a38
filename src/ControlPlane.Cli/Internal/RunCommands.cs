using System.CommandLine;
using System.Globalization;
using ControlPlane.Client;
using ControlPlane.V1;
using Grpc.Core;

namespace ControlPlane.Cli.Internal;

/// <summary><c>cpctl run submit|get|ls|watch|cancel|pause|resume|retry|approve|output</c>.</summary>
internal static class RunCommands
{
    public static Command Build(CommandHandlers handlers)
    {
        var run = new Command("run", "Submit runs and follow, steer and inspect them.");
        run.Subcommands.Add(Submit(handlers));
        run.Subcommands.Add(Get(handlers));
        run.Subcommands.Add(List(handlers));
        run.Subcommands.Add(Watch(handlers));
        run.Subcommands.Add(Simple(handlers, "cancel", "Cancel a run: running steps are stopped and nothing new starts.", async (c, id, _, ct) => new CancelRunResponse { Run = await c.CancelRunAsync(id, "cancelled with cpctl", ct).ConfigureAwait(false) }));
        run.Subcommands.Add(Simple(handlers, "pause", "Pause a run: nothing new starts until resume; running steps finish.", async (c, id, _, ct) => new PauseRunResponse { Run = await c.PauseRunAsync(id, ct).ConfigureAwait(false) }));
        run.Subcommands.Add(Simple(handlers, "resume", "Resume a paused run.", async (c, id, _, ct) => new ResumeRunResponse { Run = await c.ResumeRunAsync(id, ct).ConfigureAwait(false) }));
        run.Subcommands.Add(Simple(handlers, "retry", "Re-run the failed, cancelled and skipped steps of a finished run.", async (c, id, _, ct) => new RetryRunResponse { Run = await c.RetryRunAsync(id, ct).ConfigureAwait(false) }));
        run.Subcommands.Add(Approve(handlers));
        run.Subcommands.Add(Output(handlers));
        return run;
    }

    private static Argument<string> RunId() => new("ID") { Description = "The run's id." };

    private static Command Submit(CommandHandlers handlers)
    {
        var command = new Command("submit", "Submit a pipeline file (YAML mirroring RunSpec) as a new run.");
        var file = new Argument<string>("FILE") { Description = "The pipeline file." };
        var wait = new Option<bool>("--wait") { Description = "Follow the run to its end, printing its events; exit 0 only when it SUCCEEDED, 3 otherwise." };
        var key = new Option<string?>("--idempotency-key") { Description = "Submitting again with the same key returns the run it first created." };
        command.Arguments.Add(file);
        command.Options.Add(wait);
        command.Options.Add(key);
        handlers.Handle(command, async (inv, ct) =>
        {
            var path = inv.Get(file);
            var pipeline = await PipelineFile.LoadAsync(path, ct).ConfigureAwait(false);
            using var client = inv.CreateClient();
            SubmitRunResponse response;
            try
            {
                response = await client.SubmitRunAsync(pipeline.Spec, inv.Get(key), ct).ConfigureAwait(false);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.InvalidArgument)
            {
                return await SubmitErrors.ReportRejectedAsync(pipeline, ex, inv.Error).ConfigureAwait(false);
            }

            var submitted = response.Run;
            if (!inv.Get(wait))
            {
                if (inv.Json)
                {
                    await inv.WriteJsonAsync(response).ConfigureAwait(false);
                }
                else
                {
                    await inv.Out.WriteLineAsync(response.Created
                        ? $"run {submitted.Id} submitted ({submitted.Name}, {submitted.Spec?.Steps.Count ?? pipeline.Spec.Steps.Count} steps)"
                        : $"run {submitted.Id} already exists for idempotency key '{inv.Get(key)}' ({TextRender.Name(submitted.State)})").ConfigureAwait(false);
                }

                return ExitCodes.Success;
            }

            if (!inv.Json)
            {
                await inv.Out.WriteLineAsync(response.Created
                    ? $"run {submitted.Id} submitted ({submitted.Name}); following it, Ctrl+C stops following (the run goes on)"
                    : $"run {submitted.Id} already exists for idempotency key '{inv.Get(key)}'; following it").ConfigureAwait(false);
            }

            // --output json with --wait prints only the final run: one JSON document on stdout.
            return await FollowAsync(client, submitted.Id, 0, inv, printEvents: !inv.Json, ct).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Get(CommandHandlers handlers)
    {
        var command = new Command("get", "Show a run and its steps: state, attempt, progress, agent, why a step waits.");
        var id = RunId();
        command.Arguments.Add(id);
        handlers.Handle(command, async (inv, ct) =>
        {
            using var client = inv.CreateClient();
            var run = await client.GetRunAsync(inv.Get(id), ct).ConfigureAwait(false);
            if (inv.Json)
            {
                await inv.WriteJsonAsync(new GetRunResponse { Run = run }).ConfigureAwait(false);
            }
            else
            {
                TextRender.RunDetails(inv.Out, run);
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private static Command List(CommandHandlers handlers)
    {
        var command = new Command("ls", "List runs, newest first.");
        var state = new Option<string?>("--state") { Description = "Only runs in this state (pending, running, paused, succeeded, failed, cancelling, cancelled)." };
        var label = new Option<string[]>("--label") { Description = "Only runs with this label, key=value; repeat for several.", HelpName = "key=value" };
        var limit = new Option<int>("--limit") { Description = "At most this many runs.", DefaultValueFactory = _ => 50 };
        command.Options.Add(state);
        command.Options.Add(label);
        var watch = new Option<bool>("--watch") { Description = "Keep watching: after the table, one line per run that changes (state, new run, deleted) until interrupted; reconnects by itself when cut off." };
        command.Options.Add(limit);
        command.Options.Add(watch);
        handlers.Handle(command, async (inv, ct) =>
        {
            var max = inv.Get(limit);
            if (max < 1)
            {
                throw new CliUsageException($"--limit {max} is not positive; use e.g. --limit 50");
            }

            if (inv.Get(watch))
            {
                var watchRequest = new WatchRunsRequest { SnapshotSize = Math.Min(max, 1000) };
                if (inv.Get(state) is { } watchState)
                {
                    watchRequest.State = ArgumentParsing.State(watchState);
                }

                watchRequest.Labels.Add(ArgumentParsing.Labels(inv.Get(label), "--label"));
                using var watchClient = inv.CreateClient();
                return await WatchListAsync(watchClient, watchRequest, inv, ct).ConfigureAwait(false);
            }

            var request = new ListRunsRequest { PageSize = Math.Min(max, 1000) };
            if (inv.Get(state) is { } stateText)
            {
                request.State = ArgumentParsing.State(stateText);
            }

            request.Labels.Add(ArgumentParsing.Labels(inv.Get(label), "--label"));
            using var client = inv.CreateClient();
            var all = new ListRunsResponse();
            while (true)
            {
                var page = await client.ListRunsAsync(request, ct).ConfigureAwait(false);
                all.Runs.AddRange(page.Runs.Take(max - all.Runs.Count));
                all.NextPageToken = page.NextPageToken;
                if (page.NextPageToken.Length == 0 || all.Runs.Count >= max)
                {
                    break;
                }

                request.PageToken = page.NextPageToken;
            }

            if (inv.Json)
            {
                await inv.WriteJsonAsync(all).ConfigureAwait(false);
            }
            else
            {
                TextRender.RunList(inv.Out, all.Runs);
            }

            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>
    /// run ls --watch: the table of the snapshot, then one line per change until interrupted (a reset prints the table
    /// of the new snapshot again); with --json, every message as one JSON line.
    /// </summary>
    private static async Task<int> WatchListAsync(ControlPlaneClient client, WatchRunsRequest request, Invocation inv, CancellationToken ct)
    {
        var snapshot = new List<Run>();
        var live = false;
        await foreach (var message in client.WatchRunsAsync(request, ct).ConfigureAwait(false))
        {
            if (inv.Json)
            {
                await inv.WriteJsonLineAsync(message).ConfigureAwait(false);
                continue;
            }

            if (message.Reset)
            {
                await inv.Out.WriteLineAsync("the scheduler no longer keeps changes this far back; the runs as they are now:").ConfigureAwait(false);
                snapshot.Clear();
                live = false;
            }

            if (!live)
            {
                if (message.Run is not null)
                {
                    snapshot.Add(message.Run);
                }

                if (message.CaughtUp)
                {
                    TextRender.RunList(inv.Out, snapshot);
                    snapshot.Clear();
                    live = true;
                }

                continue;
            }

            if (message.Run is { } run)
            {
                await inv.Out.WriteLineAsync($"{DateTime.Now.ToString("HH:mm:ss", CultureInfo.InvariantCulture)}  {run.Id}  {TextRender.Name(run.State)}  {(run.Name.Length > 0 ? run.Name : "-")}  {TextRender.Labels(run.Labels)}".TrimEnd()).ConfigureAwait(false);
            }
            else if (message.DeletedRunId.Length > 0)
            {
                await inv.Out.WriteLineAsync($"{DateTime.Now.ToString("HH:mm:ss", CultureInfo.InvariantCulture)}  {message.DeletedRunId}  deleted").ConfigureAwait(false);
            }
        }

        return ExitCodes.Success;
    }

    private static Command Watch(CommandHandlers handlers)
    {
        var command = new Command("watch", "Print a run's events, one line each, until it ends; reconnects by itself when cut off. Exit 0 when the run SUCCEEDED, 3 otherwise.");
        var id = RunId();
        var after = new Option<long>("--after-seq") { Description = "Only events after this sequence number (0 replays the whole log)." };
        command.Arguments.Add(id);
        command.Options.Add(after);
        handlers.Handle(command, async (inv, ct) =>
        {
            if (inv.Get(after) < 0)
            {
                throw new CliUsageException($"--after-seq {inv.Get(after)} is negative; use 0 to replay the whole log");
            }

            using var client = inv.CreateClient();
            return await FollowAsync(client, inv.Get(id), inv.Get(after), inv, printEvents: true, ct).ConfigureAwait(false);
        });
        return command;
    }

    /// <summary>Follows a run to its end; exit 0 only when it SUCCEEDED.</summary>
    private static async Task<int> FollowAsync(ControlPlaneClient client, string runId, long afterSeq, Invocation inv, bool printEvents, CancellationToken ct)
    {
        await foreach (var runEvent in client.WatchRunAsync(runId, afterSeq, ct).ConfigureAwait(false))
        {
            if (!printEvents)
            {
                continue;
            }

            if (inv.Json)
            {
                await inv.WriteJsonLineAsync(runEvent).ConfigureAwait(false);
            }
            else
            {
                TextRender.Event(inv.Out, runEvent);
            }
        }

        var run = await client.GetRunAsync(runId, ct).ConfigureAwait(false);
        if (inv.Json && !printEvents)
        {
            await inv.WriteJsonAsync(new GetRunResponse { Run = run }).ConfigureAwait(false);
        }
        else if (!inv.Json)
        {
            var failed = run.Steps.Where(s => s.State is StepState.Failed).Select(s => s.Id).ToList();
            var detail = run.Error.Length > 0 ? ": " + run.Error : failed.Count > 0 ? ": failed steps " + string.Join(", ", failed) : string.Empty;
            var took = run.StartedAt is not null && run.FinishedAt is not null
                ? " in " + Duration(run.FinishedAt.ToDateTime() - run.StartedAt.ToDateTime())
                : string.Empty;
            await inv.Out.WriteLineAsync($"run {run.Id} {TextRender.Name(run.State)}{took}{detail}").ConfigureAwait(false);
        }

        return run.State == RunState.Succeeded ? ExitCodes.Success : ExitCodes.RunNotSucceeded;
    }

    /// <summary>A command that takes a run id, calls one method, and prints the run's new state.</summary>
    private static Command Simple(
        CommandHandlers handlers,
        string name,
        string description,
        Func<ControlPlaneClient, string, Invocation, CancellationToken, Task<Google.Protobuf.IMessage>> call)
    {
        var command = new Command(name, description);
        var id = RunId();
        command.Arguments.Add(id);
        handlers.Handle(command, async (inv, ct) =>
        {
            using var client = inv.CreateClient();
            var response = await call(client, inv.Get(id), inv, ct).ConfigureAwait(false);
            if (inv.Json)
            {
                await inv.WriteJsonAsync(response).ConfigureAwait(false);
            }
            else
            {
                var run = (Run)response.Descriptor.FindFieldByName("run").Accessor.GetValue(response);
                await inv.Out.WriteLineAsync($"run {run.Id} {TextRender.Name(run.State)}").ConfigureAwait(false);
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Approve(CommandHandlers handlers)
    {
        var command = new Command("approve", "Approve (or with --reject, reject) a gate step waiting for approval.");
        var id = RunId();
        var step = new Argument<string>("STEP") { Description = "The gate step's id." };
        var reject = new Option<bool>("--reject") { Description = "Reject instead of approve: the gate fails." };
        var comment = new Option<string?>("--comment") { Description = "Why; kept in the step's history.", HelpName = "TEXT" };
        var by = new Option<string?>("--by") { Description = "Who decides. Default: $USER." };
        command.Arguments.Add(id);
        command.Arguments.Add(step);
        command.Options.Add(reject);
        command.Options.Add(comment);
        command.Options.Add(by);
        handlers.Handle(command, async (inv, ct) =>
        {
            using var client = inv.CreateClient();
            var approve = !inv.Get(reject);
            var decidedBy = inv.Get(by) ?? inv.Cli.Variable("USER") ?? "cpctl";
            var run = await client.ApproveGateAsync(inv.Get(id), inv.Get(step), approve, decidedBy, inv.Get(comment), ct).ConfigureAwait(false);
            if (inv.Json)
            {
                await inv.WriteJsonAsync(new ApproveGateResponse { Run = run }).ConfigureAwait(false);
            }
            else
            {
                await inv.Out.WriteLineAsync($"gate {inv.Get(step)} of run {run.Id} {(approve ? "approved" : "rejected")}; run is {TextRender.Name(run.State)}").ConfigureAwait(false);
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Output(CommandHandlers handlers)
    {
        var command = new Command("output", "Print a step's output (or its URI), or save it with --file.");
        var id = RunId();
        var step = new Argument<string>("STEP") { Description = "The step's id." };
        var file = new Option<string?>("--file") { Description = "Write the output's bytes to this file instead of printing them.", HelpName = "PATH" };
        command.Arguments.Add(id);
        command.Arguments.Add(step);
        command.Options.Add(file);
        handlers.Handle(command, async (inv, ct) =>
        {
            using var client = inv.CreateClient();
            var output = await client.GetStepOutputAsync(inv.Get(id), inv.Get(step), ct).ConfigureAwait(false);
            if (inv.Get(file) is { } path)
            {
                await File.WriteAllBytesAsync(path, output.Data.ToByteArray(), ct).ConfigureAwait(false);
                await inv.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"wrote {output.Data.Length} bytes to {path}")).ConfigureAwait(false);
            }
            else if (inv.Json)
            {
                await inv.WriteJsonAsync(new GetStepOutputResponse { Output = output }).ConfigureAwait(false);
            }
            else if (output.Uri.Length > 0)
            {
                await inv.Out.WriteLineAsync(output.Uri).ConfigureAwait(false);
            }
            else
            {
                await inv.Out.WriteAsync(output.Data.ToStringUtf8()).ConfigureAwait(false);
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private static string Duration(TimeSpan value) =>
        value.TotalHours >= 1 ? $"{(int)value.TotalHours}h{value.Minutes}m{value.Seconds}s"
        : value.TotalMinutes >= 1 ? $"{value.Minutes}m{value.Seconds}s"
        : value.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + "s";
}
