using System.Collections.Concurrent;
using System.Globalization;
using ControlPlane.V1;
using Google.Protobuf;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Agent.Internal;

/// <summary>
/// Runs the attempts the scheduler assigns: admits each into the <see cref="AttemptTable"/>, gives it a work
/// directory, its inputs and checkpoint, calls its compute framework, and queues Started and the result.
/// A running step is stopped when its lease runs out without renewal (<see cref="RenewLeases"/>), so it never
/// runs on beside the attempt that replaces it.
/// </summary>
internal sealed class AttemptRunner(
    AgentOptions options,
    IReadOnlyDictionary<string, IComputeFramework> frameworks,
    AttemptTable attempts,
    Outbox outbox,
    ILogger logger,
    TimeProvider? timeProvider = null)
{
    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;

    /// <summary>Where finished attempts are counted (none in tests that build a runner alone).</summary>
    public AgentMetrics? Metrics { get; init; }

    // Per running attempt, a timer that fires at its lease's end unless renewed first.
    private readonly ConcurrentDictionary<long, CancellationTokenSource> _leases = new();

    // Welcome.lease_duration in ticks; 0 until a scheduler said it (then leases are not enforced).
    private long _leaseTicks;

    // When the latest renewal the store confirmed was asked for (a TimeProvider timestamp); 0 before the first.
    private long _renewedAt;

    // Assignments refused (declined, or failed as unrunnable here) whose refusal no scheduler has acknowledged yet: they
    // are re-announced after a reconnect so the new stream accepts the refusal when it is sent again.
    private readonly ConcurrentDictionary<long, RunningAttempt> _refused = new();

    /// <summary>Refused assignments whose refusal is not yet acknowledged, to re-announce in Hello.</summary>
    public RunningAttempt[] Refused() => [.. _refused.Values];

    /// <summary>The refusal of this assignment was stored (or rejected): nothing more to announce.</summary>
    public void ForgetRefusal(long token) => _refused.TryRemove(token, out _);

    /// <summary>
    /// The store renewed the lease of every attempt this agent owns, at some moment after
    /// <paramref name="requestedAt"/> (a <see cref="TimeProvider.GetTimestamp"/> value): the Hello that re-announced
    /// them, answered by a Welcome (<paramref name="leaseDuration"/> from Welcome.lease_duration), or a heartbeat the
    /// scheduler accepted (null: the duration last given). The lease then ends no sooner than a full duration after
    /// <paramref name="requestedAt"/>; the agent stops the step <see cref="StopMargin"/> before that, so the step is
    /// gone by the time the scheduler may give the attempt to someone else.
    /// </summary>
    public void RenewLeases(TimeSpan? leaseDuration, long requestedAt)
    {
        if (leaseDuration is { } given && given > TimeSpan.Zero)
        {
            Interlocked.Exchange(ref _leaseTicks, given.Ticks);
        }

        var ticks = Interlocked.Read(ref _leaseTicks);
        if (ticks == 0)
        {
            return;
        }

        long seen;
        do
        {
            seen = Interlocked.Read(ref _renewedAt);
        }
        while (requestedAt > seen && Interlocked.CompareExchange(ref _renewedAt, requestedAt, seen) != seen);

        var left = LeaseLeft(ticks) - _time.GetElapsedTime(requestedAt);
        foreach (var lease in _leases.Values)
        {
            try
            {
                lease.CancelAfter(left > TimeSpan.Zero ? left : TimeSpan.Zero);
            }
            catch (ObjectDisposedException)
            {
                // The step ended while this renewal ran.
            }
        }
    }

    /// <summary>
    /// How long before its lease ends a step is stopped: the kill grace (SIGTERM to SIGKILL) and a second more, so the
    /// step is gone when the lease ends; at most a quarter of the lease, so that a late heartbeat still renews in time.
    /// </summary>
    public TimeSpan StopMargin(TimeSpan lease)
    {
        var wanted = options.KillGracePeriod + TimeSpan.FromSeconds(1);
        return wanted < lease / 4 ? wanted : lease / 4;
    }

    /// <summary>
    /// Why an assignment read now must not start: no renewal was confirmed for longer than a lease less its stop margin
    /// (the agent was stopped, or its stream stalled), so the assignment may have waited in the stream past its own
    /// lease, and the store may have given the attempt to another agent already. Declined, it costs the step nothing;
    /// started, it would run beside the attempt that replaced it. Null while renewals arrive.
    /// </summary>
    private string? StaleStreamRefusal()
    {
        var ticks = Interlocked.Read(ref _leaseTicks);
        var renewedAt = Interlocked.Read(ref _renewedAt);
        if (ticks == 0 || renewedAt == 0)
        {
            return null;
        }

        var silent = _time.GetElapsedTime(renewedAt);
        return silent > LeaseLeft(ticks)
            ? string.Create(CultureInfo.InvariantCulture, $"agent '{options.AgentId}' had no lease renewal confirmed for {silent.TotalSeconds:0.0} s (lease {TimeSpan.FromTicks(ticks).TotalSeconds:0.#} s): the assignment may have waited past its lease")
            : null;
    }

    private TimeSpan LeaseLeft(long leaseTicks) => TimeSpan.FromTicks(leaseTicks) - StopMargin(TimeSpan.FromTicks(leaseTicks));

    /// <summary>
    /// Starts an assignment; declines one it cannot take now (draining, not enough free slots), which costs the step no
    /// attempt; or queues a retryable StepFailed saying why this agent cannot run it at all.
    /// </summary>
    public void Accept(Assignment assignment)
    {
        var slots = Math.Max(1, assignment.Spec?.Slots ?? 1);
        string? refusal = null;
        if (assignment.Spec is null)
        {
            refusal = "assignment carries no step spec";
        }
        else if (!frameworks.ContainsKey(assignment.Spec.Framework))
        {
            refusal = $"agent '{options.AgentId}' has no compute framework '{assignment.Spec.Framework}' (it runs {string.Join(", ", frameworks.Keys)})";
        }

        else if (assignment.Spec.Secrets.FirstOrDefault(name => !assignment.Secrets.ContainsKey(name)) is { } missing)
        {
            refusal = $"secret '{missing}' is not available to step '{assignment.StepId}' on queue '{assignment.Spec.Queue}': it was deleted, or limited to other queues, after the run was submitted (cpctl secret set {missing})";
        }

        var declinable = refusal is null;
        refusal ??= StaleStreamRefusal();
        var attempt = attempts.Admit(assignment, slots, ref refusal);
        if (attempt is null)
        {
            if (refusal is not null)
            {
                AgentLog.Refused(logger, assignment.RunId, assignment.StepId, assignment.Attempt, refusal);
                _refused[assignment.FencingToken] = new RunningAttempt { RunId = assignment.RunId, StepId = assignment.StepId, Attempt = assignment.Attempt, FencingToken = assignment.FencingToken };
                outbox.Enqueue(declinable
                    ? new ConnectRequest { StepDeclined = new StepDeclined { FencingToken = assignment.FencingToken, Reason = refusal } }
                    : new ConnectRequest { StepFailed = new StepFailed { FencingToken = assignment.FencingToken, Error = refusal } });
            }

            return;
        }

        AgentLog.Assigned(logger, attempt.RunId, attempt.StepId, attempt.Attempt, attempt.FencingToken, assignment.Spec!.Framework);
        outbox.Enqueue(new ConnectRequest { StepStarted = new StepStarted { FencingToken = attempt.FencingToken } });
        attempt.Execution = Task.Run(() => RunAsync(attempt, assignment), CancellationToken.None);
    }

    /// <summary>The scheduler sent CancelAttempt: stop the step; its result says it was cancelled.</summary>
    public void Cancel(CancelAttempt cancel)
    {
        if (attempts.CancelByScheduler(cancel.FencingToken) is not { } attempt)
        {
            return;
        }

        AgentLog.StoppingAttempt(logger, attempt.RunId, attempt.StepId, attempt.Attempt, string.IsNullOrEmpty(cancel.Reason) ? "cancelled by the scheduler" : cancel.Reason);
        attempt.Stop.Cancel();
    }

    /// <summary>The attempt belongs to someone else now: stop it and drop everything still queued for it.</summary>
    public void Revoke(long token, string reason)
    {
        if (attempts.Revoke(token) is not { } attempt)
        {
            return;
        }

        outbox.RemoveAttempt(token);
        AgentLog.Revoked(logger, attempt.RunId, attempt.StepId, attempt.Attempt, reason);
        attempt.Stop.Cancel();
        outbox.Wake();
    }

    /// <summary>Stops every running attempt (their results say the agent stopped them) without waiting for them.</summary>
    public async Task StopRunningAsync(string reason)
    {
        foreach (var attempt in attempts.StopRunning())
        {
            AgentLog.StoppingAttempt(logger, attempt.RunId, attempt.StepId, attempt.Attempt, reason);
            await attempt.Stop.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Stops every running attempt and returns once their steps have ended.</summary>
    public async Task StopAllAsync()
    {
        var running = attempts.StopRunning();
        foreach (var attempt in running)
        {
            await attempt.Stop.CancelAsync().ConfigureAwait(false);
        }

        // Return only once their processes are gone, so a stopped agent leaves nothing running behind it.
        await Task.WhenAll(running.Select(a => a.Execution ?? Task.CompletedTask)).ConfigureAwait(false);
    }

    private async Task RunAsync(AttemptState attempt, Assignment assignment)
    {
        var framework = frameworks[assignment.Spec.Framework];

        // Current for the rest of this attempt's task: a dotnet handler runs inside it, a shell step gets it as TRACEPARENT.
        var span = AgentTracing.StartExecution(assignment, options.AgentId);
        var directory = Path.Combine(
            options.EffectiveWorkRoot,
            AgentOptions.SanitizeAgentId(attempt.RunId),
            $"{AgentOptions.SanitizeAgentId(attempt.StepId)}.{attempt.Attempt}.{attempt.FencingToken}");
        StepResult result;
        try
        {
            // Left over from an earlier agent process with the same token: start clean. The directory itself is made by
            // the framework that uses it (the shell framework does; in-process handlers need none).
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }

            var inputs = assignment.Inputs.ToDictionary(
                i => i.StepId,
                i => new StepInputData(i.StepId, i.Data.Memory, string.IsNullOrEmpty(i.Uri) ? null : i.Uri, string.IsNullOrEmpty(i.Type) ? null : i.Type),
                StringComparer.Ordinal);
            // Not a ?: expression: there the null literal would convert to an empty ReadOnlyMemory (through byte[]) instead of "no checkpoint".
            ReadOnlyMemory<byte>? checkpoint = null;
            if (assignment.HasCheckpoint)
            {
                checkpoint = assignment.Checkpoint.Memory;
            }

            var leaseTicks = Interlocked.Read(ref _leaseTicks);
            var execution = new StepExecution(attempt.RunId, attempt.StepId, attempt.Attempt, attempt.FencingToken, assignment.Spec, inputs, checkpoint, directory)
            {
                LeaseDuration = leaseTicks > 0 ? TimeSpan.FromTicks(leaseTicks) : null,
                Secrets = attempt.Secrets,
                TraceParent = span?.Id ?? assignment.Traceparent,
            };
            using var lease = WatchLease(attempt);
            result = await framework.RunAsync(execution, new AttemptReporter(outbox, attempt), attempt.Stop.Token).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A framework that fails fails the attempt, never the agent.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            result = StepResult.Failure($"compute framework '{framework.Name}' failed: {ex.GetType().Name}: {ex.Message}");
        }

        if (!options.KeepWorkDirectories)
        {
            TryDeleteDirectory(directory);
        }

        AgentTracing.EndExecution(span, Masked(attempt.Mask, result));
        Finish(attempt, result);
    }

    /// <summary>Stops the attempt when its lease runs out; disposing the result ends the watch (and waits for a stop under way).</summary>
    private LeaseWatch WatchLease(AttemptState attempt)
    {
        // The claim happened a moment before the assignment arrived: its lease ends about one duration from now.
        var ticks = Interlocked.Read(ref _leaseTicks);
        var timer = new CancellationTokenSource(ticks == 0 ? Timeout.InfiniteTimeSpan : LeaseLeft(ticks), _time);
        var registration = timer.Token.Register(() =>
        {
            attempt.LeaseExpired = true;
            AgentLog.StoppingAttempt(logger, attempt.RunId, attempt.StepId, attempt.Attempt, "its lease is running out: no scheduler renewed it in time");
            try
            {
                attempt.Stop.Cancel();
            }
            catch (AggregateException)
            {
                // Thrown by a handler's own cancellation callback; on this timer thread it would end the agent. The
                // handler still sees its token cancelled and its result says how it ended.
            }
        });
        _leases[attempt.FencingToken] = timer;
        return new LeaseWatch(this, attempt.FencingToken, timer, registration);
    }

    private void Finish(AttemptState attempt, StepResult result)
    {
        result = Masked(attempt.Mask, result);
        var report = ToReport(attempt, result);
        var owned = attempts.Finish(attempt);
        Metrics?.Finished(report);
        AgentLog.Finished(logger, attempt.RunId, attempt.StepId, attempt.Attempt, result.Succeeded ? "succeeded" : "failed: " + result.Error);
        if (owned)
        {
            outbox.Enqueue(report);
        }
        else
        {
            attempt.Dispose();
        }

        outbox.Wake();
    }

    /// <summary>The result with every secret value masked in its error and output (they leave the host in the report).</summary>
    private static StepResult Masked(SecretMask mask, StepResult result) =>
        mask.IsEmpty ? result : result with { Error = mask.ApplyOrNull(result.Error), Output = mask.Apply(result.Output), OutputUri = mask.ApplyOrNull(result.OutputUri) };

    private ConnectRequest ToReport(AttemptState attempt, StepResult result)
    {
        if (result.Succeeded)
        {
            var completed = new StepCompleted { FencingToken = attempt.FencingToken, Output = ByteString.CopyFrom(result.Output.Span), OutputUri = result.OutputUri ?? string.Empty };
            completed.Usage.Add(result.Usage.ToDictionary());
            return new ConnectRequest { StepCompleted = completed };
        }

        var error = result.Error ?? "step failed";
        if (attempt.LeaseExpired && !attempt.CancelledByScheduler)
        {
            error = $"agent '{options.AgentId}' lost the attempt's lease (no scheduler renewed it in time) and stopped the step ({error})";
        }
        else if (attempt.StoppedByAgent && !attempt.CancelledByScheduler)
        {
            error = $"agent '{options.AgentId}' stopped before the step finished ({error})";
        }

        var stoppedHere = attempt.StoppedByAgent || attempt.LeaseExpired;

        var failed = new StepFailed
        {
            FencingToken = attempt.FencingToken,
            Error = error,
            Permanent = result.Permanent,
            TimedOut = result.TimedOut && !attempt.CancelledByScheduler,
            Cancelled = attempt.CancelledByScheduler || (result.Cancelled && !stoppedHere),
        };
        failed.Usage.Add(result.Usage.ToDictionary());
        return new ConnectRequest { StepFailed = failed };
    }

    private sealed class LeaseWatch(AttemptRunner runner, long token, CancellationTokenSource timer, CancellationTokenRegistration registration) : IDisposable
    {
        public void Dispose()
        {
            runner._leases.TryRemove(token, out _);

            // Waits for a stop that is running, so the attempt is not disposed under it.
            registration.Dispose();
            timer.Dispose();
        }
    }

    private static void TryDeleteDirectory(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return;
        }

        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A step may leave files it cannot delete (or the directory is already gone); the work root is scratch space.
        }
    }
}
