using ControlPlane.V1;

namespace ControlPlane.Agent.Internal;

/// <summary>
/// The attempts this agent holds, from assignment until their result has been written, with their slots
/// and whether the agent still takes new ones. Its lock is the agent's only one: admission, finish,
/// revocation and forgetting each change the table and the slot count in one step.
/// </summary>
internal sealed class AttemptTable(string agentId, int slots)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<long, AttemptState> _attempts = [];
    private int _usedSlots;

    // Written under the lock so no assignment is admitted after draining began; read without it elsewhere.
    private volatile bool _draining;

    /// <summary>True once draining: no new attempts are admitted.</summary>
    public bool IsDraining => _draining;

    /// <summary>Attempts whose step is still running.</summary>
    public int Running
    {
        get
        {
            lock (_gate)
            {
                return _attempts.Values.Count(a => !a.Finished);
            }
        }
    }

    /// <summary>Slots held by the attempts this agent holds.</summary>
    public int UsedSlots
    {
        get
        {
            lock (_gate)
            {
                return _usedSlots;
            }
        }
    }

    /// <summary>No attempt is held, not even one whose result still waits to be written.</summary>
    public bool IsEmpty
    {
        get
        {
            lock (_gate)
            {
                return _attempts.Count == 0;
            }
        }
    }

    /// <summary>Stops admitting attempts; true the first time only.</summary>
    public bool BeginDrain()
    {
        lock (_gate)
        {
            if (_draining)
            {
                return false;
            }

            _draining = true;
            return true;
        }
    }

    /// <summary>
    /// Admits an assignment needing <paramref name="stepSlots"/> slots. Returns null without a refusal when its token is
    /// already held (a repeated assignment is ignored, not refused); otherwise the new attempt, or null with
    /// <paramref name="refusal"/> saying why it cannot run here. A refusal passed in (no spec, unknown framework) wins.
    /// </summary>
    public AttemptState? Admit(Assignment assignment, int stepSlots, ref string? refusal)
    {
        lock (_gate)
        {
            if (_attempts.ContainsKey(assignment.FencingToken))
            {
                refusal = null;
                return null;
            }

            if (refusal is not null)
            {
                return null;
            }

            if (_draining)
            {
                refusal = $"agent '{agentId}' is draining and takes no new steps";
                return null;
            }

            if (_usedSlots + stepSlots > slots)
            {
                refusal = $"agent '{agentId}' has {slots - _usedSlots} free slots, the step needs {stepSlots}";
                return null;
            }

            var attempt = new AttemptState(assignment, stepSlots);
            _attempts.Add(attempt.FencingToken, attempt);
            _usedSlots += stepSlots;
            return attempt;
        }
    }

    /// <summary>The attempts to re-announce in Hello: those whose result still waits to be written count, as they are owned until it lands.</summary>
    public RunningAttempt[] Owned()
    {
        lock (_gate)
        {
            return _attempts.Values.Where(a => !a.Revoked).Select(a => a.ToRunningAttempt()).ToArray();
        }
    }

    /// <summary>The fencing tokens whose leases a heartbeat renews.</summary>
    public long[] OwnedTokens()
    {
        lock (_gate)
        {
            return _attempts.Values.Where(a => !a.Revoked).Select(a => a.FencingToken).ToArray();
        }
    }

    /// <summary>Marks an attempt as no longer owned (dropped at once if its step already ended); null when it is not held.</summary>
    public AttemptState? Revoke(long token)
    {
        lock (_gate)
        {
            if (!_attempts.TryGetValue(token, out var attempt))
            {
                return null;
            }

            attempt.Revoked = true;
            if (attempt.Finished)
            {
                _attempts.Remove(token);
            }

            return attempt;
        }
    }

    /// <summary>Marks a running attempt as cancelled by the scheduler; null when it is not held or already ended.</summary>
    public AttemptState? CancelByScheduler(long token)
    {
        lock (_gate)
        {
            if (!_attempts.TryGetValue(token, out var attempt) || attempt.Finished)
            {
                return null;
            }

            attempt.CancelledByScheduler = true;
            return attempt;
        }
    }

    /// <summary>Marks every running attempt as stopped by the agent and returns them, for the caller to cancel.</summary>
    public List<AttemptState> StopRunning()
    {
        lock (_gate)
        {
            var running = _attempts.Values.Where(a => !a.Finished).ToList();
            foreach (var attempt in running)
            {
                attempt.StoppedByAgent = true;
            }

            return running;
        }
    }

    /// <summary>The step ended and its slots are free. False when the attempt was revoked: it is dropped and its result must not be sent.</summary>
    public bool Finish(AttemptState attempt)
    {
        lock (_gate)
        {
            attempt.Finished = true;
            _usedSlots -= attempt.Slots;
            if (attempt.Revoked)
            {
                _attempts.Remove(attempt.FencingToken);
                return false;
            }

            return true;
        }
    }

    /// <summary>Drops an attempt whose result has been written.</summary>
    public void Forget(long token)
    {
        lock (_gate)
        {
            if (_attempts.Remove(token, out var attempt))
            {
                attempt.Dispose();
            }
        }
    }
}
