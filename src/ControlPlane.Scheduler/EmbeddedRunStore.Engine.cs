using ControlPlane.Scheduler.Internal;
using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Scheduler;

// State transitions, DAG propagation and slot/budget accounting; every method runs under the lock.
public sealed partial class EmbeddedRunStore
{
    private const double BudgetEpsilon = 1e-9;

    private EmbeddedRun CreateRun(RunSpec spec, string idempotencyKey, string traceParent)
    {
        var now = Now;
        var run = new EmbeddedRun(
            new Run
            {
                Id = _options.RunIdGenerator?.Invoke(now) ?? Guid.CreateVersion7(now).ToString("N"),
                Name = spec.Name,
                Labels = { spec.Labels },
                State = RunState.Pending,
                Spec = spec,
                CreatedAt = Timestamp.FromDateTimeOffset(now),
                IdempotencyKey = idempotencyKey,
                TraceId = RunTrace.TraceIdOf(traceParent),
            },
            ++_nextRunSeq)
        {
            Retention = _options.RetentionOf(spec),
            TraceParent = traceParent,
        };
        run.Steps = spec.Steps.Select((s, i) => new EmbeddedStep(run, i, s, StepDefaults.QueueOf(spec, s))).ToArray();
        for (var i = 0; i < run.Steps.Length; i++)
        {
            run.IndexById[run.Steps[i].Spec.Id] = i;
        }

        foreach (var step in run.Steps)
        {
            step.Needs = step.Spec.Needs.Select(n => run.IndexById[n]).ToArray();
            foreach (var need in step.Needs)
            {
                run.Steps[need].Children.Add(step.Index);
            }
        }

        run.Unfinished = run.Steps.Length;
        _runs[run.Run.Id] = run;
        if (idempotencyKey.Length > 0)
        {
            _runIdByIdempotencyKey[idempotencyKey] = run.Run.Id;
        }

        FeedTouch(run);
        run.Run.History.Add(RunEvents.History(RunState.Unspecified, RunState.Pending, "submitted", now));
        AppendEvent(run, (id, seq, t) => RunEvents.RunStateChanged(id, seq, t, RunState.Unspecified, RunState.Pending, "submitted"));
        foreach (var step in run.Steps)
        {
            if (step.Needs.Length == 0)
            {
                Evaluate(step);
            }
        }

        return run;
    }

    /// <summary>A copy for a caller: with steps (blocked reasons filled in) for GetRun, without for ListRuns.</summary>
    private Run Snapshot(EmbeddedRun run, bool withSteps)
    {
        var copy = run.Run.Clone();
        if (!withSteps)
        {
            copy.History.Clear();
            copy.Spec = copy.Spec.Clone();
            copy.Spec.Steps.Clear();
            return copy;
        }

        foreach (var step in run.Steps)
        {
            var s = step.Step.Clone();
            s.HasCheckpoint = step.Checkpoint is not null;
            s.BlockedReason = s.State == StepState.Ready ? BlockedReason(step) : "";
            copy.Steps.Add(s);
        }

        return copy;
    }

    /// <summary>Why a READY step has not been dispatched, checked in the order a claim would refuse it.</summary>
    private string BlockedReason(EmbeddedStep step)
    {
        var run = step.Owner;
        if (run.Run.State == RunState.Paused)
        {
            return BlockedReasons.RunPaused();
        }

        var serving = _agents.Values.Where(a => a.Agent.State == AgentState.Connected && a.Serves(step)).ToList();
        if (serving.Count == 0)
        {
            return BlockedReasons.NoAgent(step.Queue, step.Spec.Framework, step.Spec.Framework == StepDefaults.DotnetFramework ? step.Spec.Handler : "");
        }

        if (run.Spec.Concurrency > 0 && run.Active >= run.Spec.Concurrency)
        {
            return BlockedReasons.RunCap(run.Active, run.Spec.Concurrency);
        }

        if (_queueLimits.TryGetValue(step.Queue, out var queueLimit) && _queueUsed.GetValueOrDefault(step.Queue) >= queueLimit)
        {
            return BlockedReasons.QueueCap(step.Queue, _queueUsed.GetValueOrDefault(step.Queue), queueLimit);
        }

        var key = step.Spec.ConcurrencyKey;
        if (key.Length > 0 && _keyLimits.TryGetValue(key, out var keyLimit) && _keyUsed.GetValueOrDefault(key) >= keyLimit)
        {
            return BlockedReasons.KeyCap(key, _keyUsed.GetValueOrDefault(key), keyLimit);
        }

        if (BudgetWait(step) is { } budget)
        {
            return budget;
        }

        return serving.Any(a => a.FreeSlots >= step.Slots) ? "" : BlockedReasons.NoFreeSlots(step.Queue);
    }

    /// <summary>The budget reason when the estimate fits the budget but not what in-flight attempts reserved.</summary>
    private static string? BudgetWait(EmbeddedStep step)
    {
        var run = step.Owner.Run;
        foreach (var (unit, estimate) in step.Spec.Estimate)
        {
            if (!run.Spec.Budget.TryGetValue(unit, out var limit))
            {
                continue;
            }

            var used = run.BudgetUsed.GetValueOrDefault(unit);
            var reserved = run.BudgetReserved.GetValueOrDefault(unit);
            if (used + reserved + estimate > limit + BudgetEpsilon)
            {
                return BlockedReasons.Budget(unit, estimate, used, reserved, limit);
            }
        }

        return null;
    }

    /// <summary>The QUOTA_EXCEEDED error when the estimate can never fit, whatever settles.</summary>
    private static string? QuotaExceeded(EmbeddedStep step)
    {
        var run = step.Owner.Run;
        foreach (var (unit, estimate) in step.Spec.Estimate.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (run.Spec.Budget.TryGetValue(unit, out var limit) && run.BudgetUsed.GetValueOrDefault(unit) + estimate > limit + BudgetEpsilon)
            {
                return BlockedReasons.QuotaExceeded(unit, estimate, run.BudgetUsed.GetValueOrDefault(unit), limit);
            }
        }

        return null;
    }

    private void AppendEvent(EmbeddedRun run, Func<string, long, DateTimeOffset, RunEvent> build)
    {
        var seq = run.Run.LastEventSeq + 1;
        run.Events.Add(build(run.Run.Id, seq, Now));
        run.Run.LastEventSeq = seq;
        _runsTouched.Add(run);
    }

    /// <summary>Applies one run transition from the table, with its history entry and event; refuses (and logs) any other.</summary>
    private bool SetRunState(EmbeddedRun run, RunState to, string reason)
    {
        var from = run.Run.State;
        if (from == to)
        {
            return true;
        }

        if (!RunStateMachine.CanTransition(from, to))
        {
            LogRunTransitionRefused(_logger, run.Run.Id, StateNames.Of(from), StateNames.Of(to), reason);
            return false;
        }

        var now = Now;
        run.Run.State = to;
        if (to == RunState.Running && run.Run.StartedAt is null)
        {
            run.Run.StartedAt = Timestamp.FromDateTimeOffset(now);
        }

        if (RunStateMachine.IsTerminal(to))
        {
            run.Run.FinishedAt = Timestamp.FromDateTimeOffset(now);
            if (run.Retention > TimeSpan.Zero)
            {
                run.ExpiresAt = now + run.Retention;
                _expiring.Add(run);
            }
        }
        else if (RunStateMachine.IsTerminal(from) && run.ExpiresAt is not null)
        {
            // Revived (RetryRun): kept until it finishes again.
            _expiring.Remove(run);
            run.ExpiresAt = null;
        }

        FeedTouch(run);
        run.Run.History.Add(RunEvents.History(from, to, reason, now));
        AppendEvent(run, (id, seq, t) => RunEvents.RunStateChanged(id, seq, t, from, to, reason));
        return true;
    }

    /// <summary>Applies one step transition from the table, keeping the ready sets and counters in step.</summary>
    private bool SetStepState(EmbeddedStep step, StepState to, string reason)
    {
        var from = step.Step.State;
        if (!StepStateMachine.CanTransition(from, to))
        {
            LogStepTransitionRefused(_logger, step.Owner.Run.Id, step.Spec.Id, StateNames.Of(from), StateNames.Of(to), reason);
            return false;
        }

        var run = step.Owner;
        var now = Now;
        if (from == StepState.Ready)
        {
            RemoveReady(step);
        }

        if (from == StepState.RetryWait)
        {
            _retryWaiting.Remove(step);
        }

        if (StepStateMachine.IsTerminal(from) && !StepStateMachine.IsTerminal(to))
        {
            run.Unfinished++;
        }
        else if (!StepStateMachine.IsTerminal(from) && StepStateMachine.IsTerminal(to))
        {
            run.Unfinished--;
            step.Step.FinishedAt = Timestamp.FromDateTimeOffset(now);
        }

        step.Step.State = to;
        if (to == StepState.Ready)
        {
            step.ReadyAt = now;
            AddReady(step);
        }
        else if (to == StepState.RetryWait)
        {
            _retryWaiting.Add(step);
        }

        if (to is StepState.Assigned or StepState.WaitingApproval && step.Step.StartedAt is null)
        {
            step.Step.StartedAt = Timestamp.FromDateTimeOffset(now);
        }

        FeedTouch(run);
        step.Step.History.Add(RunEvents.History(from, to, reason, now, step.Step.Attempt));
        var agentId = StepStateMachine.IsActive(to) || StepStateMachine.IsActive(from) ? step.Step.AgentId : "";
        AppendEvent(run, (id, seq, t) => RunEvents.StepStateChanged(id, seq, t, step.Spec.Id, from, to, step.Step.Attempt, reason, agentId));
        return true;
    }

    private void AddReady(EmbeddedStep step)
    {
        var run = step.Owner;
        step.ReadySeq = ++_nextReadySeq;
        if (!run.Ready.TryGetValue(step.Queue, out var set))
        {
            set = new SortedSet<EmbeddedStep>(ReadyOrder.Instance);
            run.Ready[step.Queue] = set;
        }

        set.Add(step);

        // A paused or ending run, or one at its cap, joins the rotation when resumed or when an attempt of it ends.
        if (IsRunnable(run) && !run.CapBlocked)
        {
            AddToRotation(run, step.Queue);
        }

        _readyQueuesTouched.Add(step.Queue);
    }

    private static bool IsRunnable(EmbeddedRun run) => run.Run.State is RunState.Pending or RunState.Running;

    /// <summary>Puts the run at the end of the queue's rotation, unless it is in it already.</summary>
    private void AddToRotation(EmbeddedRun run, string queue)
    {
        if (run.RotationNodes.ContainsKey(queue))
        {
            return;
        }

        if (!_rotation.TryGetValue(queue, out var list))
        {
            list = new LinkedList<EmbeddedRun>();
            _rotation[queue] = list;
        }

        run.RotationNodes[queue] = list.AddLast(run);
    }

    /// <summary>Takes the run off the queue's rotation.</summary>
    private void TakeOffRotation(EmbeddedRun run, string queue)
    {
        if (run.RotationNodes.Remove(queue, out var node))
        {
            var list = node.List!;
            list.Remove(node);
            if (list.Count == 0)
            {
                _rotation.Remove(queue);
            }
        }
    }

    /// <summary>Puts a runnable run back on the rotation of every queue where it has READY steps (resume, an attempt ended at the cap).</summary>
    private void RequeueRun(EmbeddedRun run)
    {
        if (!IsRunnable(run))
        {
            return;
        }

        foreach (var (queue, ready) in run.Ready)
        {
            if (ready.Count > 0)
            {
                AddToRotation(run, queue);
                _readyQueuesTouched.Add(queue);
            }
        }
    }

    private void RemoveReady(EmbeddedStep step)
    {
        var run = step.Owner;
        if (!run.Ready.TryGetValue(step.Queue, out var set) || !set.Remove(step) || set.Count > 0)
        {
            return;
        }

        run.Ready.Remove(step.Queue);
        TakeOffRotation(run, step.Queue);
    }

    /// <summary>
    /// Decides a BLOCKED step from its needs and run_if: queue it (or open the gate), skip it, or leave it
    /// waiting. Skips propagate through a worklist so long chains do not recurse.
    /// </summary>
    private void Evaluate(EmbeddedStep first)
    {
        var work = new Queue<EmbeddedStep>();
        work.Enqueue(first);
        while (work.TryDequeue(out var step))
        {
            if (step.Step.State != StepState.Blocked || step.CancelRequested)
            {
                continue;
            }

            var run = step.Owner;
            var needs = step.Needs.Select(i => run.Steps[i]).ToList();
            var allTerminal = needs.All(n => StepStateMachine.IsTerminal(n.Step.State));
            var unsuccessful = needs.FirstOrDefault(n => StepStateMachine.IsTerminal(n.Step.State) && n.Step.State != StepState.Succeeded);
            string? skip = null;
            var go = false;
            switch (StepDefaults.RunIfOf(step.Spec))
            {
                case RunIf.Always:
                    go = allTerminal;
                    break;
                case RunIf.OnFailure:
                    if (allTerminal)
                    {
                        go = unsuccessful is not null;
                        skip = go ? null : "every needed step succeeded (run_if: on_failure)";
                    }

                    break;
                default:
                    if (unsuccessful is not null)
                    {
                        skip = $"needed step '{unsuccessful.Spec.Id}' is {StateNames.Of(unsuccessful.Step.State)}";
                    }
                    else
                    {
                        go = allTerminal;
                    }

                    break;
            }

            if (skip is not null)
            {
                step.Step.Error = skip;
                SetStepState(step, StepState.Skipped, skip);
                foreach (var child in step.Children)
                {
                    work.Enqueue(run.Steps[child]);
                }
            }
            else if (go && step.IsGate)
            {
                SetStepState(step, StepState.WaitingApproval, "needs satisfied; waiting for approval");
                if (run.Run.State == RunState.Pending)
                {
                    SetRunState(run, RunState.Running, $"gate '{step.Spec.Id}' is waiting for approval");
                }
            }
            else if (go)
            {
                SetStepState(step, StepState.Ready, step.Needs.Length == 0 ? "root step" : "needs satisfied");
            }
        }
    }

    /// <summary>After a step reached a terminal state: unblock or skip its children, then maybe finish the run.</summary>
    private void StepEnded(EmbeddedStep step)
    {
        var run = step.Owner;
        if (run.Run.State != RunState.Cancelling)
        {
            foreach (var child in step.Children)
            {
                Evaluate(run.Steps[child]);
            }
        }

        if (run.Unfinished == 0)
        {
            FinishRun(run);
        }
    }

    private void FinishRun(EmbeddedRun run)
    {
        if (RunStateMachine.IsTerminal(run.Run.State))
        {
            return;
        }

        if (run.Run.State == RunState.Cancelling || run.Steps.Any(s => s.Step.State == StepState.Cancelled))
        {
            SetRunState(run, RunState.Cancelled, run.Run.Error.Length > 0 ? run.Run.Error : "cancelled");
            return;
        }

        var failed = run.Steps.FirstOrDefault(s => s.Step.State == StepState.Failed);
        if (failed is not null)
        {
            run.Run.Error = $"step '{failed.Spec.Id}' failed: {failed.Step.Error}";
            SetRunState(run, RunState.Failed, run.Run.Error);
        }
        else
        {
            SetRunState(run, RunState.Succeeded, "every step finished");
        }
    }

    /// <summary>Drops the outputs of this step's needs once every consumer of each has succeeded (unless keep_output).</summary>
    private static void DropConsumedOutputs(EmbeddedStep consumer)
    {
        var run = consumer.Owner;
        foreach (var index in consumer.Needs)
        {
            var producer = run.Steps[index];
            if (producer.Output is null || producer.Spec.KeepOutput)
            {
                continue;
            }

            if (producer.Children.All(c => run.Steps[c].Step.State == StepState.Succeeded))
            {
                producer.Output = null;
                producer.Step.OutputDropped = true;
            }
        }
    }

    /// <summary>Ends the current attempt: frees its slots, settles its budget reservation against the usage reported.</summary>
    private void EndAttempt(EmbeddedStep step, IEnumerable<KeyValuePair<string, double>>? usage, bool chargeUsage = true)
    {
        var run = step.Owner;
        _activeByToken.Remove(step.Token);
        run.Active--;
        if (run.CapBlocked)
        {
            run.CapBlocked = false;
            RequeueRun(run);
        }

        Decrement(_queueUsed, step.Queue);
        if (step.Spec.ConcurrencyKey.Length > 0)
        {
            Decrement(_keyUsed, step.Spec.ConcurrencyKey);
        }

        if (_agents.TryGetValue(step.Step.AgentId, out var agent))
        {
            agent.Agent.UsedSlots -= step.Slots;
        }

        // Units the agent did not report count at their estimate, so an unreported cost never frees budget.
        var actual = new Dictionary<string, double>(step.Reserved, StringComparer.Ordinal);
        foreach (var (unit, amount) in usage ?? [])
        {
            actual[unit] = amount;
        }

        // Totals back at 0 are removed by AddUnits.
        RunEvents.AddUnits(run.Run.BudgetReserved, step.Reserved, -1);

        step.Reserved.Clear();
        if (chargeUsage)
        {
            RunEvents.AddUnits(run.Run.BudgetUsed, actual);
            RunEvents.AddUnits(step.Step.Usage, actual);
        }

        foreach (var queue in agent?.Queues ?? [step.Queue])
        {
            _readyQueuesTouched.Add(queue);
        }

        _readyQueuesTouched.Add(step.Queue);

        static void Decrement(Dictionary<string, long> counters, string name)
        {
            var left = counters.GetValueOrDefault(name) - 1;
            if (left <= 0)
            {
                counters.Remove(name);
            }
            else
            {
                counters[name] = left;
            }
        }
    }

    /// <summary>
    /// The attempt ended without success: cancelled when its run is being cancelled, else retried per the
    /// step's policy (or up to <see cref="RunStoreOptions.LeaseExpiryAttempts"/> for a lost lease), else failed.
    /// </summary>
    private void AttemptFailed(EmbeddedStep step, string error, bool permanent, bool leaseLost)
    {
        if (step.CancelRequested)
        {
            step.Step.Error = step.Owner.Run.Error.Length > 0 ? step.Owner.Run.Error : "cancelled";
            SetStepState(step, StepState.Cancelled, step.Step.Error);
            StepEnded(step);
            return;
        }

        var allowed = RetryBackoff.MaxAttempts(step.Spec.Retry);
        if (leaseLost)
        {
            allowed = Math.Max(allowed, _options.LeaseExpiryAttempts);
        }

        step.Step.Error = error;
        if (!permanent && step.AttemptsUsed < allowed)
        {
            if (leaseLost)
            {
                SetStepState(step, StepState.Ready, error + "; requeued");
            }
            else
            {
                var wait = RetryBackoff.Compute(step.Spec.Retry, step.AttemptsUsed);
                step.RetryDueAt = Now + wait;
                SetStepState(step, StepState.RetryWait, $"{error}; retry {step.AttemptsUsed + 1} of {allowed} in {wait}");
            }

            return;
        }

        var final = permanent ? error : $"{error} (attempt {step.AttemptsUsed} of {allowed}; no attempts left)";
        step.Step.Error = final;
        SetStepState(step, StepState.Failed, final);
        StepEnded(step);
    }
}
