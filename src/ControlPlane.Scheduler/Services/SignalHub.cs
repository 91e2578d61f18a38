namespace ControlPlane.Scheduler.Services;

/// <summary>
/// Routes store signals to the streams of this replica: ready work to the agents serving the queue,
/// cancellations and drains to the connection holding the agent, event-log growth to the run's watchers and to the
/// run-list watchers (WatchRuns).
/// </summary>
internal sealed class SignalHub
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, AgentConnection> _agents = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<WakeUp>> _watchers = new(StringComparer.Ordinal);
    private readonly HashSet<WakeUp> _listWatchers = [];

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
                lock (_gate)
                {
                    toWake = _watchers.TryGetValue(appended.RunId, out var set) ? [.. set, .. _listWatchers] : [.. _listWatchers];
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
        lock (_gate)
        {
            _agents.TryGetValue(connection.AgentId, out var previous);
            _agents[connection.AgentId] = connection;
            return previous;
        }
    }

    /// <summary>Forgets the connection; true when it was still the agent's current one (not replaced by a reconnect).</summary>
    public bool Unregister(AgentConnection connection)
    {
        lock (_gate)
        {
            if (_agents.TryGetValue(connection.AgentId, out var current) && ReferenceEquals(current, connection))
            {
                _agents.Remove(connection.AgentId);
                return true;
            }

            return false;
        }
    }

    public AgentConnection[] Connections()
    {
        lock (_gate)
        {
            return [.. _agents.Values];
        }
    }

    /// <summary>Rings <paramref name="wake"/> whenever the run's event log grows, until disposed.</summary>
    public IDisposable Watch(string runId, WakeUp wake)
    {
        lock (_gate)
        {
            if (!_watchers.TryGetValue(runId, out var set))
            {
                set = [];
                _watchers[runId] = set;
            }

            set.Add(wake);
        }

        return new Watcher(this, runId, wake);
    }

    /// <summary>Rings <paramref name="wake"/> whenever any run's event log grows (a state change among them), until disposed.</summary>
    public IDisposable WatchAll(WakeUp wake)
    {
        lock (_gate)
        {
            _listWatchers.Add(wake);
        }

        return new ListWatcher(this, wake);
    }

    private AgentConnection? FindAgent(string agentId)
    {
        lock (_gate)
        {
            return _agents.GetValueOrDefault(agentId);
        }
    }

    private sealed class ListWatcher(SignalHub hub, WakeUp wake) : IDisposable
    {
        public void Dispose()
        {
            lock (hub._gate)
            {
                hub._listWatchers.Remove(wake);
            }
        }
    }

    private sealed class Watcher(SignalHub hub, string runId, WakeUp wake) : IDisposable
    {
        public void Dispose()
        {
            lock (hub._gate)
            {
                if (hub._watchers.TryGetValue(runId, out var set) && set.Remove(wake) && set.Count == 0)
                {
                    hub._watchers.Remove(runId);
                }
            }
        }
    }
}
