using ControlPlane.Tests.Support;
namespace ControlPlane.ClientInterop.Tests;

/// <summary>
/// A real scheduler host process (embedded store) and one agent host process serving the "default" queue,
/// on a free loopback port, shared by the tests of a class and killed afterwards.
/// </summary>
public sealed class ControlPlaneHostsFixture : IAsyncLifetime
{
    public const string AgentId = "client-interop";

    // Generous: each host starts in about a second, but slow CI machines take longer to start runtimes.
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly string _workRoot = Directory.CreateTempSubdirectory("cp-client-interop-").FullName;
    private ObservedProcess? _scheduler;
    private ObservedProcess? _agent;

    /// <summary>"127.0.0.1:PORT", the form gRPC clients in any language take.</summary>
    public string Target { get; private set; } = "";

    public ObservedProcess Agent => _agent ?? throw new InvalidOperationException("the fixture has not started");

    /// <summary>Both hosts' output so far, shown when a client fails.</summary>
    public string HostOutput => $"--- scheduler output ---\n{_scheduler?.Output}--- agent output ---\n{_agent?.Output}";

    public async Task InitializeAsync()
    {
        _scheduler = ObservedProcess.Start("scheduler host", ClientEnvironment.SchedulerHost, ["--listen", "127.0.0.1:0"], _workRoot);
        var address = new Uri(await _scheduler.WaitForListeningAsync(StartTimeout));
        Target = $"127.0.0.1:{address.Port}";

        _agent = ObservedProcess.Start(
            "agent host",
            ClientEnvironment.AgentHost,
            ["--scheduler", $"http://{Target}", "--agent-id", AgentId, "--slots", "4", "--work-root", Path.Combine(_workRoot, "agent")],
            _workRoot);
        await _agent.WaitForLineAsync(l => l.Contains("Connected to ", StringComparison.Ordinal), StartTimeout, "that it connected to the scheduler");
    }

    public async Task DisposeAsync()
    {
        // Agent first, so it does not log reconnect attempts against a scheduler that is going away.
        if (_agent is not null)
        {
            await _agent.DisposeAsync();
        }

        if (_scheduler is not null)
        {
            await _scheduler.DisposeAsync();
        }

        try
        {
            Directory.Delete(_workRoot, recursive: true);
        }
        catch (IOException)
        {
            // A killed step process may still hold its work directory; the OS cleans temp eventually.
        }
    }
}
