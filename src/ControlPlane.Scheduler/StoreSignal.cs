namespace ControlPlane.Scheduler;

// StoreSignal and its cases form one closed union, so they live together.

/// <summary>Something other processes sharing the store should react to.</summary>
public abstract record StoreSignal;

/// <summary>A queue has READY steps: agents serving it should claim.</summary>
public sealed record ReadyWork(string Queue) : StoreSignal;

/// <summary>A run's event log grew: watchers should read from their last seq.</summary>
public sealed record RunEventsAppended(string RunId, long LastSeq) : StoreSignal;

/// <summary>An attempt must be stopped: the agent holding it gets CancelAttempt.</summary>
public sealed record AttemptCancelRequested(string AgentId, long FencingToken, string Reason) : StoreSignal;

/// <summary>An agent was drained: its connection sends Drain.</summary>
public sealed record AgentDrainRequested(string AgentId) : StoreSignal;
