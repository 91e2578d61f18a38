using System.Diagnostics;
using Xunit;

namespace ControlPlane.Rpc.Tests;

/// <summary>Runs peers/grpcio_echo_server.py (Debian's python3 with grpcio) on a free loopback port.</summary>
public sealed class ClientGrpcioServerFixture : IAsyncLifetime
{
    private Process? _process;

    public string Address { get; private set; } = string.Empty;

    public async Task InitializeAsync()
    {
        const string python = "/usr/bin/python3";
        if (!File.Exists(python))
        {
            throw new InvalidOperationException("The grpcio peer needs /usr/bin/python3 with grpcio: apt-get install -y python3-grpcio python3-protobuf.");
        }

        var start = new ProcessStartInfo(python, [ClientPeerPaths.GrpcioEchoServer])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        _process = Process.Start(start) ?? throw new InvalidOperationException("Could not start " + python);
        var stderr = _process.StandardError.ReadToEndAsync();
        var line = await _process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        if (line is null || !line.StartsWith("LISTENING ", StringComparison.Ordinal))
        {
            throw new InvalidOperationException(
                $"The grpcio echo server did not start (install python3-grpcio python3-protobuf if missing): {line} {await stderr.WaitAsync(TimeSpan.FromSeconds(10))}");
        }

        Address = "http://127.0.0.1:" + line["LISTENING ".Length..];
    }

    public async Task DisposeAsync()
    {
        if (_process is null)
        {
            return;
        }

        // Closing stdin asks the server to stop; kill it if it does not.
        _process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
    }
}
