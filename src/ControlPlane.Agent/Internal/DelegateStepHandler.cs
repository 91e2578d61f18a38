namespace ControlPlane.Agent.Internal;

/// <summary>Adapts a delegate to <see cref="IStepHandler"/>.</summary>
internal sealed class DelegateStepHandler(Func<IStepContext, Task<StepHandlerResult>> handler) : IStepHandler
{
    public Task<StepHandlerResult> HandleAsync(IStepContext context) => handler(context);
}
