using ControlPlane.V1;

namespace ControlPlane.Agent.Internal;

/// <summary>One attempt this agent holds, from its assignment until its result has been written.</summary>
internal sealed class AttemptState(Assignment assignment, int slots) : IDisposable
{
    public string RunId { get; } = assignment.RunId;

    public string StepId { get; } = assignment.StepId;

    public int Attempt { get; } = assignment.Attempt;

    public long FencingToken { get; } = assignment.FencingToken;

    public int Slots { get; } = slots;

    /// <summary>The attempt's secret values, by name, as the assignment brought them (UTF-8 text).</summary>
    public IReadOnlyDictionary<string, string> Secrets { get; } = assignment.Secrets.ToDictionary(s => s.Key, s => s.Value.ToStringUtf8(), StringComparer.Ordinal);

    /// <summary>Hides <see cref="Secrets"/> in everything the attempt reports.</summary>
    public SecretMask Mask { get; } = assignment.Secrets.Count == 0 ? SecretMask.None : new SecretMask(assignment.Secrets.Values.Select(v => v.ToStringUtf8()));

    public CancellationTokenSource Stop { get; } = new();

    /// <summary>The task running the step; set once it has been started.</summary>
    public Task? Execution { get; set; }

    /// <summary>The step has ended; only its result may still be waiting in the outbox.</summary>
    public bool Finished { get; set; }

    /// <summary>The scheduler sent CancelAttempt.</summary>
    public bool CancelledByScheduler { get; set; }

    /// <summary>The scheduler gave the attempt to someone else; nothing more is reported for it.</summary>
    public bool Revoked { get; set; }

    /// <summary>The agent stopped it on shutdown.</summary>
    public bool StoppedByAgent { get; set; }

    /// <summary>The agent stopped it because its lease ran out unrenewed.</summary>
    public bool LeaseExpired { get; set; }

    public RunningAttempt ToRunningAttempt() =>
        new() { RunId = RunId, StepId = StepId, Attempt = Attempt, FencingToken = FencingToken };

    public void Dispose() => Stop.Dispose();
}
