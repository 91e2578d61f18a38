using ControlPlane.Tests.Shared;
namespace ControlPlane.Interop.Tests;

/// <summary>One interop server process per test class, on a free loopback port.</summary>
public abstract class InteropServerFixture : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private ObservedProcess? _server;

    public int Port { get; private set; }

    /// <summary>The server's output so far, shown when a case fails.</summary>
    public string ServerOutput => _server?.Output ?? string.Empty;

    public async Task InitializeAsync()
    {
        _server = StartServer();
        Port = await _server.WaitForListeningAsync(StartTimeout);
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    protected abstract ObservedProcess StartServer();
}
