using ControlPlane.V1;

namespace ControlPlane.Scheduler.Internal;

/// <summary>The values a StepSpec field takes when it is left unset, in one place for both stores.</summary>
internal static class StepDefaults
{
    /// <summary>The queue of steps whose spec and run name none.</summary>
    public const string Queue = "default";

    /// <summary>Agent slots one attempt occupies when StepSpec.slots is 0.</summary>
    public const int Slots = 1;

    public const string ShellFramework = "shell";
    public const string DotnetFramework = "dotnet";

    /// <summary>Compute frameworks a task may name.</summary>
    public static IReadOnlyList<string> KnownFrameworks { get; } = [DotnetFramework, ShellFramework];

    /// <summary>The step's queue: its own, else the run's, else "default".</summary>
    public static string QueueOf(RunSpec run, StepSpec step) =>
        step.Queue.Length > 0 ? step.Queue : run.Queue.Length > 0 ? run.Queue : Queue;

    public static int SlotsOf(StepSpec step) => step.Slots > 0 ? step.Slots : Slots;

    public static StepKind KindOf(StepSpec step) => step.Kind == StepKind.Gate ? StepKind.Gate : StepKind.Task;

    public static RunIf RunIfOf(StepSpec step) => step.RunIf == RunIf.Unspecified ? RunIf.OnSuccess : step.RunIf;

    /// <summary>The queues an agent takes steps from: the ones it named, else "default".</summary>
    public static IReadOnlyList<string> QueuesOf(AgentRegistration agent) =>
        agent.Queues.Count > 0 ? agent.Queues : [Queue];
}
