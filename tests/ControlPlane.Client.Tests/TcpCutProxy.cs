using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Client.Tests;

/// <summary>
/// A loopback TCP proxy in front of a server whose connections a test can cut at once (RST), the way a
/// network failure or a crashed load balancer drops a long-lived stream.
/// </summary>
public sealed class TcpCutProxy : IAsyncDisposable
{
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly int targetPort;
    private readonly ConcurrentDictionary<Socket, byte> sockets = new();
    private readonly CancellationTokenSource stop = new();
    private readonly Task acceptLoop;
    private int accepted;

    public TcpCutProxy(int targetPort)
    {
        this.targetPort = targetPort;
        listener.Start();
        acceptLoop = AcceptAsync();
    }

    public string Address => $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";

    /// <summary>Connections accepted so far.</summary>
    public int Accepted => Volatile.Read(ref accepted);

    /// <summary>Resets every open connection, both sides.</summary>
    public void CutAll()
    {
        foreach (var socket in sockets.Keys)
        {
            sockets.TryRemove(socket, out _);
            try
            {
                socket.LingerState = new LingerOption(true, 0);
                socket.Close();
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        listener.Stop();
        CutAll();
        try
        {
            await acceptLoop;
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException)
        {
        }

        stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            var client = await listener.AcceptSocketAsync(stop.Token);
            Interlocked.Increment(ref accepted);
            var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            client.NoDelay = true;
            try
            {
                await upstream.ConnectAsync(IPAddress.Loopback, targetPort, stop.Token);
            }
            catch (SocketException)
            {
                client.Close();
                upstream.Dispose();
                continue;
            }

            sockets[client] = 0;
            sockets[upstream] = 0;
            _ = PumpAsync(client, upstream);
            _ = PumpAsync(upstream, client);
        }
    }

    private async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, stop.Token);
                if (read == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, stop.Token);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // One side was cut: cut the other too, as a broken path would.
            foreach (var socket in new[] { from, to })
            {
                if (sockets.TryRemove(socket, out _))
                {
                    try
                    {
                        socket.LingerState = new LingerOption(true, 0);
                        socket.Close();
                    }
                    catch (ObjectDisposedException)
                    {
                    }
                }
            }
        }
    }
}
