using Microsoft.Extensions.Hosting;

namespace ControlPlane.Agent.Hosting;

/// <summary>
/// The agent host's lifetime outside systemd: it registers no signal handlers, because the stop token
/// (<see cref="ControlPlane.Hosting.DaemonSignals"/> in a process, the caller's in cpctl or a test) owns them.
/// </summary>
internal sealed class AgentLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
