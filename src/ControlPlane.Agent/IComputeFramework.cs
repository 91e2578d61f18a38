namespace ControlPlane.Agent;

/// <summary>
/// Runs one step attempt on this agent. Implementations own the step's timeout (they alone know how
/// to stop their work) and must stop promptly when the token is cancelled.
/// </summary>
public interface IComputeFramework
{
    /// <summary>The name steps select in <c>StepSpec.framework</c>, e.g. "shell".</summary>
    string Name { get; }

    /// <summary>Handler names announced in Hello (only frameworks that dispatch by handler name have any).</summary>
    IReadOnlyCollection<string> Handlers { get; }

    /// <summary>Runs the attempt to its end. Never throws for step failures: they are a <see cref="StepResult"/>.</summary>
    Task<StepResult> RunAsync(StepExecution execution, IStepReporter reporter, CancellationToken cancellationToken);
}
