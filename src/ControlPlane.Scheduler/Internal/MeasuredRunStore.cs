using System.Diagnostics;
using ControlPlane.V1;

namespace ControlPlane.Scheduler.Internal;

/// <summary>
/// A namespace's run store as the replica's services see it: every call is timed
/// (controlplane_store_call_duration_seconds{operation}), and what claims, reports and maintenance passes returned
/// feeds the dispatch, step and lease counters. One interception point, so no service can forget to count.
/// </summary>
internal sealed class MeasuredRunStore(IRunStore inner, SchedulerMetrics metrics, string ns) : IRunStore
{
    /// <summary>The store itself (what it also implements — tokens, secrets, audit — is found on it).</summary>
    public IRunStore Inner { get; } = inner;

    public TimeProvider Clock => Inner.Clock;

    /// <summary>The store a replica's services use: <paramref name="store"/> without its measuring wrapper.</summary>
    public static IRunStore Unwrap(IRunStore store) => store is MeasuredRunStore measured ? measured.Inner : store;

    public Task<SubmitRunResult> SubmitRunAsync(RunSpec spec, string? idempotencyKey, CancellationToken cancellationToken = default) =>
        Time("submit_run", () => Inner.SubmitRunAsync(spec, idempotencyKey, cancellationToken));

    public Task<SubmitRunResult> SubmitRunAsync(RunSpec spec, string? idempotencyKey, string? traceParent, CancellationToken cancellationToken = default) =>
        Time("submit_run", () => Inner.SubmitRunAsync(spec, idempotencyKey, traceParent, cancellationToken));

    public Task<Run?> GetRunAsync(string runId, CancellationToken cancellationToken = default) =>
        Time("get_run", () => Inner.GetRunAsync(runId, cancellationToken));

    public Task<RunPage> ListRunsAsync(RunQuery query, CancellationToken cancellationToken = default) =>
        Time("list_runs", () => Inner.ListRunsAsync(query, cancellationToken));

    public Task<IReadOnlyList<Run?>> GetRunSummariesAsync(IReadOnlyList<string> runIds, CancellationToken cancellationToken = default) =>
        Time("get_run_summaries", () => Inner.GetRunSummariesAsync(runIds, cancellationToken));

    public Task<RunChangePage> ReadRunChangesAsync(string? afterCursor, int max, CancellationToken cancellationToken = default) =>
        Time("read_run_changes", () => Inner.ReadRunChangesAsync(afterCursor, max, cancellationToken));

    public Task<Run> CancelRunAsync(string runId, string reason, CancellationToken cancellationToken = default) =>
        Time("cancel_run", () => Inner.CancelRunAsync(runId, reason, cancellationToken));

    public Task<Run> PauseRunAsync(string runId, CancellationToken cancellationToken = default) =>
        Time("pause_run", () => Inner.PauseRunAsync(runId, cancellationToken));

    public Task<Run> ResumeRunAsync(string runId, CancellationToken cancellationToken = default) =>
        Time("resume_run", () => Inner.ResumeRunAsync(runId, cancellationToken));

    public Task<Run> RetryRunAsync(string runId, CancellationToken cancellationToken = default) =>
        Time("retry_run", () => Inner.RetryRunAsync(runId, cancellationToken));

    public Task<Run> DecideGateAsync(GateDecisionInput decision, CancellationToken cancellationToken = default) =>
        Time("decide_gate", () => Inner.DecideGateAsync(decision, cancellationToken));

    public Task<IReadOnlyList<RunEvent>> ReadEventsAsync(string runId, long afterSeq, int max, CancellationToken cancellationToken = default) =>
        Time("read_events", () => Inner.ReadEventsAsync(runId, afterSeq, max, cancellationToken));

    public Task<StepOutput?> GetStepOutputAsync(string runId, string stepId, CancellationToken cancellationToken = default) =>
        Time("get_step_output", () => Inner.GetStepOutputAsync(runId, stepId, cancellationToken));

    public Task<AgentSession> ConnectAgentAsync(AgentRegistration registration, CancellationToken cancellationToken = default) =>
        Time("connect_agent", () => Inner.ConnectAgentAsync(registration, cancellationToken));

    public Task DisconnectAgentAsync(string agentId, string sessionId, CancellationToken cancellationToken = default) =>
        Time("disconnect_agent", async () =>
        {
            await Inner.DisconnectAgentAsync(agentId, sessionId, cancellationToken).ConfigureAwait(false);
            return true;
        });

    public Task<Agent> DrainAgentAsync(string agentId, CancellationToken cancellationToken = default) =>
        Time("drain_agent", () => Inner.DrainAgentAsync(agentId, cancellationToken));

    public Task<IReadOnlyList<Agent>> ListAgentsAsync(CancellationToken cancellationToken = default) =>
        Time("list_agents", () => Inner.ListAgentsAsync(cancellationToken));

    public async Task<IReadOnlyList<Assignment>> ClaimAsync(ClaimRequest request, CancellationToken cancellationToken = default)
    {
        var claimed = await Time("claim", () => Inner.ClaimAsync(request, cancellationToken)).ConfigureAwait(false);

        // A claim repeated under its id after a failed call returns what that call took, which nobody counted yet.
        Measure(() => metrics.Dispatched(ns, claimed, Inner.Clock.GetUtcNow()));
        return claimed;
    }

    public async Task<IReadOnlyList<ReportOutcome>> ReportAsync(IReadOnlyList<AttemptReport> reports, CancellationToken cancellationToken = default)
    {
        IReadOnlyList<ReportOutcome> outcomes;
        try
        {
            outcomes = await Time("report", () => Inner.ReportAsync(reports, cancellationToken)).ConfigureAwait(false);
        }
        catch (RunStoreException ex) when (ex.Error != RunStoreError.Unavailable)
        {
            // Refused for good (an outage is waited out instead): none of these reports was recorded.
            Measure(() => metrics.ReportsFailed(reports.Count));
            throw;
        }

        Measure(() => metrics.Reported(reports, outcomes, Inner.Clock.GetUtcNow()));
        return outcomes;
    }

    public Task<IReadOnlyList<long>> RenewLeasesAsync(string agentId, IReadOnlyList<AttemptRef> attempts, string? sessionId = null, CancellationToken cancellationToken = default) =>
        Time("renew_leases", () => Inner.RenewLeasesAsync(agentId, attempts, sessionId, cancellationToken));

    public async Task<MaintenanceResult> RunMaintenanceAsync(int max, CancellationToken cancellationToken = default)
    {
        var result = await Time("run_maintenance", () => Inner.RunMaintenanceAsync(max, cancellationToken)).ConfigureAwait(false);
        Measure(() => metrics.LeasesExpired(result.LeasesExpired));
        return result;
    }

    public Task<LeaseFreezeResult> FreezeLeasesAsync(DateTimeOffset since, DateTimeOffset until, CancellationToken cancellationToken = default) =>
        Time("freeze_leases", () => Inner.FreezeLeasesAsync(since, until, cancellationToken));

    public Task SetLimitAsync(LimitKind kind, string name, int limit, CancellationToken cancellationToken = default) =>
        Time("set_limit", async () =>
        {
            await Inner.SetLimitAsync(kind, name, limit, cancellationToken).ConfigureAwait(false);
            return true;
        });

    public Task<StoreStats> GetStatsAsync(CancellationToken cancellationToken = default) =>
        Time("get_stats", () => Inner.GetStatsAsync(cancellationToken));

    public Task<IAsyncDisposable> SubscribeAsync(Action<StoreSignal> handler, CancellationToken cancellationToken = default) =>
        Inner.SubscribeAsync(handler, cancellationToken);

    /// <summary>The store belongs to whoever created it (the replica's namespace stores, or a test); not disposed here.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private async Task<T> Time<T>(string operation, Func<Task<T>> call)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return await call().ConfigureAwait(false);
        }
        finally
        {
            metrics.StoreCall(operation, Stopwatch.GetElapsedTime(started));
        }
    }

    /// <summary>
    /// Records what a store call returned. The call has committed by then (leases taken, results stored): a failure to
    /// count it must not turn it into an error its caller would retry or report.
    /// </summary>
    private static void Measure(Action record)
    {
        try
        {
            record();
        }
#pragma warning disable CA1031 // Counting is best effort; the store call it follows has succeeded.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }
}
