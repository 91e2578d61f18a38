namespace ControlPlane.Agent;

/// <summary>
/// A step implemented in .NET, run in-process by the "dotnet" framework under the name it is registered with.
/// Throwing fails the attempt (retryable); return <see cref="StepHandlerResult.Failure"/> to fail it permanently.
/// </summary>
public interface IStepHandler
{
    /// <summary>Runs one attempt of the step.</summary>
    Task<StepHandlerResult> HandleAsync(IStepContext context);
}
