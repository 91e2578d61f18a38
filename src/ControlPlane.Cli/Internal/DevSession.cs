using ControlPlane.Agent;
using ControlPlane.Client;
using ControlPlane.Scheduler;
using ControlPlane.V1;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Cli.Internal;

/// <summary>
/// <c>cpctl dev</c>: a scheduler with the in-memory store and one agent in this process, running a pipeline file to its
/// end with live progress (progress bars on a terminal, one line per event otherwise) and a summary. The first Ctrl+C
/// cancels the run and waits until it is CANCELLED; with --keep-running the scheduler stays up after the run until Ctrl+C.
/// </summary>
internal static class DevSession
{
    /// <summary>How long a cancelled run may take to reach CANCELLED (its shell steps get SIGTERM, then SIGKILL).</summary>
    private static readonly TimeSpan CancelWait = TimeSpan.FromSeconds(60);

    public static async Task<int> RunAsync(DevSettings settings, CliContext cli, CancellationToken cancellationToken)
    {
        var pipeline = await PipelineFile.LoadAsync(settings.PipelinePath, cancellationToken).ConfigureAwait(false);
        using var interrupt = new DevInterrupt(settings.HandleSignals, cancellationToken);
        using var loggerFactory = HostEntryPoints.CreateLoggerFactory(LogLevel.Warning);
        var server = new SchedulerServer(new SchedulerOptions { Listen = settings.Listen, HttpListen = settings.HttpListen }, storeFactory: null, loggerFactory);
        await using (server.ConfigureAwait(false))
        {
            await server.StartAsync(cancellationToken).ConfigureAwait(false);
            var address = server.Addresses[0].ToString().TrimEnd('/');
            await cli.Out.WriteLineAsync($"dev: scheduler on {address} (in-memory store), agent 'dev' with {settings.Slots} slots").ConfigureAwait(false);
            if (server.HttpAddress is { } dashboard)
            {
                await cli.Out.WriteLineAsync($"dev: dashboard on {dashboard} (metrics on {dashboard}metrics)").ConfigureAwait(false);
            }

            var agentOptions = new AgentOptions
            {
                SchedulerAddress = address,
                AgentId = "dev",
                Slots = settings.Slots,
                ShutdownGracePeriod = TimeSpan.FromSeconds(5),
            };
            using var agentStop = new CancellationTokenSource();
            var agent = AgentRunner.RunAsync(agentOptions, AgentRunner.CreateDefaultFrameworks(agentOptions, loggerFactory), loggerFactory, agentStop.Token);
            try
            {
                var interactive = ReferenceEquals(cli.Out, Console.Out) && !Console.IsOutputRedirected;
                IDevView view = interactive ? new LiveDevView(cli.Out, address) : new PlainDevView(cli.Out, address);
                var exit = await RunPipelineAsync(pipeline, address, view, cli, interrupt.Token).ConfigureAwait(false);
                if (settings.KeepRunning && !interrupt.Token.IsCancellationRequested)
                {
                    view.Note($"scheduler and agent stay up on {address}; Ctrl+C stops them");
                    view.Note($"try: cpctl run ls --scheduler {address}");
                    await WaitAsync(interrupt.Token).ConfigureAwait(false);
                }

                return exit;
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

    /// <summary>The step a gate-waiting event is about; null for any other event.</summary>
    public static string? GateWaiting(RunEvent runEvent) =>
        runEvent.EventCase == RunEvent.EventOneofCase.StepStateChanged && runEvent.StepStateChanged.ToState == StepState.WaitingApproval
            ? runEvent.StepStateChanged.StepId
            : null;

    public static string GateHint(string runId, string step, string address) =>
        $"gate {step} waits for a decision: cpctl run approve {runId} {step} --scheduler {address} (add --reject to reject)";

    private static async Task<int> RunPipelineAsync(PipelineFile pipeline, string address, IDevView view, CliContext cli, CancellationToken interrupt)
    {
        using var client = new ControlPlaneClient(address);
        Run run;
        try
        {
            run = (await client.SubmitRunAsync(pipeline.Spec, cancellationToken: CancellationToken.None).ConfigureAwait(false)).Run;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.InvalidArgument)
        {
            return await SubmitErrors.ReportRejectedAsync(pipeline, ex, cli.Error).ConfigureAwait(false);
        }

        view.Note($"run {run.Id} ({run.Name}, {pipeline.Spec.Steps.Count} steps) from {pipeline.Path}");

        // The watch is not tied to Ctrl+C: after cancelling, the session keeps following until the run is CANCELLED.
        using var watchStop = new CancellationTokenSource();
        var follow = view.FollowAsync(run.Id, pipeline.Spec, client.WatchRunAsync(run.Id, 0, watchStop.Token));
        var interrupted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (interrupt.Register(() => interrupted.TrySetResult()).ConfigureAwait(false))
        {
            await Task.WhenAny(follow, interrupted.Task).ConfigureAwait(false);
        }

        var cancelled = !follow.IsCompleted;
        if (cancelled)
        {
            view.Note($"cancelling run {run.Id}; Ctrl+C again exits at once");
            await client.CancelRunAsync(run.Id, "cancelled from cpctl dev (Ctrl+C)", CancellationToken.None).ConfigureAwait(false);
            watchStop.CancelAfter(CancelWait);
        }

        try
        {
            await follow.ConfigureAwait(false);
        }
        catch (Exception ex) when (watchStop.IsCancellationRequested && ex is OperationCanceledException or RpcException)
        {
            view.Note($"run {run.Id} did not reach CANCELLED within {CancelWait.TotalSeconds:0} s");
        }

        var final = await client.GetRunAsync(run.Id, CancellationToken.None).ConfigureAwait(false);
        view.Summary(final);
        return cancelled ? ExitCodes.Interrupted
            : final.State == RunState.Succeeded ? ExitCodes.Success
            : ExitCodes.RunNotSucceeded;
    }

    private static async Task WaitAsync(CancellationToken interrupt)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, interrupt).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C: the normal way to end a session kept running.
        }
    }
}
