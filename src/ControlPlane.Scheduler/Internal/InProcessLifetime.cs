using Microsoft.Extensions.Hosting;

namespace ControlPlane.Scheduler.Internal;

/// <summary>The web host's lifetime for a replica inside another process (tests, cpctl dev): it registers no signal handlers.</summary>
internal sealed class InProcessLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
