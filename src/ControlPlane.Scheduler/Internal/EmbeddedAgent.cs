using ControlPlane.V1;

namespace ControlPlane.Scheduler.Internal;

/// <summary>One agent known to the embedded store.</summary>
internal sealed class EmbeddedAgent
{
    public EmbeddedAgent(Agent agent, AgentRegistration registration)
    {
        Agent = agent;
        Registration = registration;
    }

    /// <summary>The client-visible agent; used_slots is kept current.</summary>
    public Agent Agent { get; }

    public AgentRegistration Registration { get; set; }

    /// <summary>The agent's current session: only its end disconnects the agent.</summary>
    public string SessionId { get; set; } = string.Empty;

    public IReadOnlyList<string> Queues => StepDefaults.QueuesOf(Registration);

    public int FreeSlots => Agent.Slots - Agent.UsedSlots;

    /// <summary>Whether this agent can run the step at all (queue, framework, handler, slot count).</summary>
    public bool Serves(EmbeddedStep step) =>
        Queues.Contains(step.Queue)
        && Registration.Frameworks.Contains(step.Spec.Framework)
        && (step.Spec.Framework != StepDefaults.DotnetFramework || Registration.Handlers.Count == 0 || Registration.Handlers.Contains(step.Spec.Handler))
        && step.Slots <= Agent.Slots;
}
