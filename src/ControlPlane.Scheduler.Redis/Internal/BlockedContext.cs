using ControlPlane.V1;
using ControlPlane.Scheduler.Internal;

namespace ControlPlane.Scheduler.Redis.Internal;

/// <summary>
/// What a READY step may be waiting for, read once per GetRun: the slot counters and caps, and the
/// connected agents. No serving agent comes first, as in the embedded store: no cap matters until one connects.
/// </summary>
internal sealed class BlockedContext(IReadOnlyDictionary<string, string> slots, IReadOnlyList<Agent> agents)
{
    public string Explain(Run run, RunSpec spec, StepSpec step, IReadOnlyDictionary<string, string> f)
    {
        if (run.State == RunState.Paused)
        {
            return BlockedReasons.RunPaused();
        }

        var (queue, framework, handler, key, slotCount) = RunSnapshot.MetaOf(f, step.Id);
        var serving = agents.Where(a =>
            a.State == AgentState.Connected
            && (a.Queues.Count == 0 ? queue == StepDefaults.Queue : a.Queues.Contains(queue))
            && a.Frameworks.Contains(framework)
            && (handler.Length == 0 || a.Handlers.Contains(handler))).ToList();
        if (serving.Count == 0)
        {
            return BlockedReasons.NoAgent(queue, framework, handler);
        }

        var runUsed = RunSnapshot.Long(f, "_used");
        if (spec.Concurrency > 0 && runUsed >= spec.Concurrency)
        {
            return BlockedReasons.RunCap(runUsed, spec.Concurrency);
        }

        var queueLimit = RunSnapshot.Long(slots, "ql:" + queue);
        var queueUsed = RunSnapshot.Long(slots, "q:" + queue);
        if (queueLimit > 0 && queueUsed >= queueLimit)
        {
            return BlockedReasons.QueueCap(queue, queueUsed, queueLimit);
        }

        if (key.Length > 0)
        {
            var keyLimit = RunSnapshot.Long(slots, "kl:" + key);
            var keyUsed = RunSnapshot.Long(slots, "k:" + key);
            if (keyLimit > 0 && keyUsed >= keyLimit)
            {
                return BlockedReasons.KeyCap(key, keyUsed, keyLimit);
            }
        }

        foreach (var (unit, estimate) in step.Estimate)
        {
            if (spec.Budget.TryGetValue(unit, out var limit))
            {
                run.BudgetUsed.TryGetValue(unit, out var used);
                run.BudgetReserved.TryGetValue(unit, out var reserved);
                if (used + reserved + estimate > limit + 1e-9)
                {
                    return BlockedReasons.Budget(unit, estimate, used, reserved, limit);
                }
            }
        }

        return serving.Any(a => a.Slots - a.UsedSlots >= slotCount) ? string.Empty : BlockedReasons.NoFreeSlots(queue);
    }
}
