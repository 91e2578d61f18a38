namespace ControlPlane.Scheduler.Services;

/// <summary>
/// Routes store signals to the streams of this replica: ready work to the agents serving the queue,
/// cancellations and drains to the connection holding the agent, event-log growth to the run's watchers.
/// </summary>
internal sealed class SignalHub
{
    private readonly Lock gate = new();
    private readonly Dictionary<string, AgentConnection> agents = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<WakeUp>> watchers = new(StringComparer.Ordinal);

    public void OnSignal(StoreSignal signal)
    {
        switch (signal)
        {
            case ReadyWork ready:
                foreach (var connection in Connections())
                {
                    if (connection.Serves(ready.Queue))
                    {
                        connection.RequestClaim();
                    }
                }

                break;

            case AttemptCancelRequested cancel:
                FindAgent(cancel.AgentId)?.CancelAttempt(cancel.FencingToken, cancel.Reason);
                break;

            case AgentDrainRequested drain:
                FindAgent(drain.AgentId)?.Drain("drained by an operator (AdminService.DrainAgent)");
                break;

            case RunEventsAppended appended:
                WakeUp[] toWake;
                lock (gate)
                {
                    toWake = watchers.TryGetValue(appended.RunId, out var set) ? [.. set] : [];
                }

                foreach (var wake in toWake)
                {
                    wake.Set();
                }

                break;
        }
    }

    /// <summary>Makes <paramref name="connection"/> the one for its agent; returns the one it replaces, if any.</summary>
    public AgentConnection? Register(AgentConnection connection)
    {
        lock (gate)
        {
            agents.TryGetValue(connection.AgentId, out var previous);
            agents[connection.AgentId] = connection;
            return previous;
        }
    }

    /// <summary>Forgets the connection; true when it was still the agent's current one (not replaced by a reconnect).</summary>
    public bool Unregister(AgentConnection connection)
    {
        lock (gate)
        {
            if (agents.TryGetValue(connection.AgentId, out var current) && ReferenceEquals(current, connection))
            {
                agents.Remove(connection.AgentId);
                return true;
            }

            return false;
        }
    }

    public AgentConnection[] Connections()
    {
        lock (gate)
        {
            return [.. agents.Values];
        }
    }

    /// <summary>Rings <paramref name="wake"/> whenever the run's event log grows, until disposed.</summary>
    public IDisposable Watch(string runId, WakeUp wake)
    {
        lock (gate)
        {
            if (!watchers.TryGetValue(runId, out var set))
            {
                set = [];
                watchers[runId] = set;
            }

            set.Add(wake);
        }

        return new Watcher(this, runId, wake);
    }

    private AgentConnection? FindAgent(string agentId)
    {
        lock (gate)
        {
            return agents.GetValueOrDefault(agentId);
        }
    }

    private sealed class Watcher(SignalHub hub, string runId, WakeUp wake) : IDisposable
    {
        public void Dispose()
        {
            lock (hub.gate)
            {
                if (hub.watchers.TryGetValue(runId, out var set) && set.Remove(wake) && set.Count == 0)
                {
                    hub.watchers.Remove(runId);
                }
            }
        }
    }
}
