using ControlPlane.Agent;
using ControlPlane.Client;
using ControlPlane.Rpc;
using ControlPlane.Scheduler;
using ControlPlane.V1;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace ControlPlane.Cli.Internal;

/// <summary>
/// <c>cpctl dev</c>: a scheduler with the in-memory store and one agent in this process; given a pipeline
/// file, runs it to its end with live progress (progress bars on a terminal, one line per event otherwise).
/// </summary>
internal static class DevSession
{
    public static async Task<int> RunAsync(DevSettings settings, CliContext cli, CancellationToken cancellationToken)
    {
        var pipeline = settings.PipelinePath is null ? null : await PipelineFile.LoadAsync(settings.PipelinePath, cancellationToken).ConfigureAwait(false);
        using var loggerFactory = HostEntryPoints.CreateLoggerFactory(LogLevel.Warning);
        var server = new SchedulerServer(new SchedulerOptions { Listen = settings.Listen }, storeFactory: null, loggerFactory);
        await using (server.ConfigureAwait(false))
        {
            await server.StartAsync(cancellationToken).ConfigureAwait(false);
            var address = server.Addresses[0].ToString().TrimEnd('/');
            await cli.Out.WriteLineAsync($"dev: scheduler on {address} (in-memory store), agent 'dev' with {settings.Slots} slots").ConfigureAwait(false);

            var agentOptions = new AgentOptions
            {
                SchedulerAddress = address,
                AgentId = "dev",
                Slots = settings.Slots,
                ShutdownGracePeriod = TimeSpan.FromSeconds(5),
            };
            using var agentStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var agent = AgentRunner.RunAsync(agentOptions, AgentRunner.CreateDefaultFrameworks(agentOptions, loggerFactory), loggerFactory, agentStop.Token);
            try
            {
                if (pipeline is not null)
                {
                    return await RunPipelineAsync(pipeline, address, cli, cancellationToken).ConfigureAwait(false);
                }

                await cli.Out.WriteLineAsync($"dev: submit pipelines with 'cpctl run submit FILE --scheduler {address}'; Ctrl+C stops").ConfigureAwait(false);
                try
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Ctrl+C: the normal way to end a dev session.
                }

                return ExitCodes.Success;
            }
            finally
            {
                // Agent first, so its running steps report before the scheduler goes away.
                await agentStop.CancelAsync().ConfigureAwait(false);
                try
                {
                    await agent.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }

                await server.StopAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private static async Task<int> RunPipelineAsync(PipelineFile pipeline, string address, CliContext cli, CancellationToken cancellationToken)
    {
        using var client = new ControlPlaneClient(address);
        Run run;
        try
        {
            run = (await client.SubmitRunAsync(pipeline.Spec, cancellationToken: cancellationToken).ConfigureAwait(false)).Run;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.InvalidArgument)
        {
            return await SubmitErrors.ReportRejectedAsync(pipeline, ex, cli.Error).ConfigureAwait(false);
        }

        await cli.Out.WriteLineAsync($"dev: run {run.Id} ({run.Name}, {pipeline.Spec.Steps.Count} steps)").ConfigureAwait(false);
        var interactive = ReferenceEquals(cli.Out, Console.Out) && !Console.IsOutputRedirected;
        if (interactive)
        {
            await FollowWithProgressBarsAsync(client, run.Id, pipeline.Spec, address, cli, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await foreach (var runEvent in client.WatchRunAsync(run.Id, 0, cancellationToken).ConfigureAwait(false))
            {
                TextRender.Event(cli.Out, runEvent);
                await HintGateAsync(runEvent, run.Id, address, cli.Out).ConfigureAwait(false);
            }
        }

        var final = await client.GetRunAsync(run.Id, cancellationToken).ConfigureAwait(false);
        await cli.Out.WriteLineAsync().ConfigureAwait(false);
        TextRender.RunDetails(cli.Out, final);
        return final.State == RunState.Succeeded ? ExitCodes.Success : ExitCodes.RunNotSucceeded;
    }

    private static async Task FollowWithProgressBarsAsync(ControlPlaneClient client, string runId, RunSpec spec, string address, CliContext cli, CancellationToken cancellationToken)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(cli.Out) });
        await console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new SpinnerColumn())
            .StartAsync(async context =>
            {
                var bars = spec.Steps.ToDictionary(s => s.Id, s => context.AddTask(Markup.Escape($"{s.Id} waiting"), maxValue: 100), StringComparer.Ordinal);
                await foreach (var runEvent in client.WatchRunAsync(runId, 0, cancellationToken).ConfigureAwait(false))
                {
                    switch (runEvent.EventCase)
                    {
                        case RunEvent.EventOneofCase.StepStateChanged when bars.TryGetValue(runEvent.StepStateChanged.StepId, out var bar):
                            var change = runEvent.StepStateChanged;
                            bar.Description = Markup.Escape($"{change.StepId} {TextRender.Name(change.ToState).ToLowerInvariant()}");
                            if (change.ToState is StepState.Succeeded)
                            {
                                bar.Value = 100;
                            }

                            if (change.ToState is StepState.Succeeded or StepState.Failed or StepState.Cancelled or StepState.Skipped)
                            {
                                bar.StopTask();
                            }

                            if (change.ToState is StepState.WaitingApproval)
                            {
                                bar.Description = Markup.Escape($"{change.StepId} waiting: cpctl run approve {runId} {change.StepId} --scheduler {address}");
                            }

                            break;
                        case RunEvent.EventOneofCase.StepProgressed when bars.TryGetValue(runEvent.StepProgressed.StepId, out var bar):
                            var progress = runEvent.StepProgressed;
                            bar.Value = Math.Clamp(progress.Percent, 0, 100);
                            if (progress.Message.Length > 0)
                            {
                                bar.Description = Markup.Escape($"{progress.StepId} {progress.Message}");
                            }

                            break;
                    }
                }
            }).ConfigureAwait(false);
    }

    private static async Task HintGateAsync(RunEvent runEvent, string runId, string address, TextWriter output)
    {
        if (runEvent.EventCase == RunEvent.EventOneofCase.StepStateChanged && runEvent.StepStateChanged.ToState == StepState.WaitingApproval)
        {
            var step = runEvent.StepStateChanged.StepId;
            await output.WriteLineAsync($"dev: gate {step} waits for a decision: cpctl run approve {runId} {step} --scheduler {address} (add --reject to reject)").ConfigureAwait(false);
        }
    }
}
