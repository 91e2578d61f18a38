using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Tests.Support;

/// <summary>
/// A loopback TCP proxy in front of a server whose connections a test can break the two ways a network does: cut them
/// at once (RST on both sides, as a crashed load balancer drops a long-lived stream), or blackhole them (nothing is
/// forwarded any more, in either direction, and nothing is closed, as when a host or a NAT entry vanishes), which only
/// keep-alive pings or a deadline can notice. Connections accepted after a blackhole are forwarded normally.
/// </summary>
public sealed class TcpCutProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _targetPort;
    private readonly ConcurrentDictionary<Link, byte> _links = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private int _accepted;

    public TcpCutProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        _acceptLoop = AcceptAsync();
    }

    public string Address => $"http://127.0.0.1:{Port}";

    /// <summary>The loopback port the proxy listens on.</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Connections accepted so far.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>Connections open now (blackholed ones included, until both of their ends have closed).</summary>
    public int Open => _links.Count;

    /// <summary>Resets every open connection, both sides, blackholed ones included. Returns how many were cut.</summary>
    public int CutAll()
    {
        var cut = 0;
        foreach (var link in _links.Keys)
        {
            if (_links.TryRemove(link, out _))
            {
                link.Reset();
                cut++;
            }
        }

        return cut;
    }

    /// <summary>
    /// Stops forwarding on every open connection, in both directions, without closing either side: bytes that arrive are
    /// read and dropped. An end that closes its side is not told to the other end. Returns how many were blackholed.
    /// </summary>
    public int BlackholeAll()
    {
        var count = 0;
        foreach (var link in _links.Keys)
        {
            if (!link.Blackholed)
            {
                link.Blackholed = true;
                count++;
            }
        }

        return count;
    }

    /// <summary>
    /// Stops forwarding the server's replies on every open connection, without closing either side: requests still reach
    /// the server, which acts on them, but their replies are read and dropped (a reply lost on the way back). Returns how
    /// many connections are affected.
    /// </summary>
    public int DropRepliesAll()
    {
        var count = 0;
        foreach (var link in _links.Keys)
        {
            if (!link.RepliesDropped)
            {
                link.RepliesDropped = true;
                count++;
            }
        }

        return count;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        CutAll();
        try
        {
            await _acceptLoop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptSocketAsync(_stop.Token).ConfigureAwait(false);
            Interlocked.Increment(ref _accepted);
            var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            client.NoDelay = true;
            try
            {
                await upstream.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token).ConfigureAwait(false);
            }
            catch (SocketException)
            {
                client.Close();
                upstream.Dispose();
                continue;
            }

            var link = new Link(client, upstream);
            _links[link] = 0;
            _ = PumpAsync(link, client, upstream, fromServer: false);
            _ = PumpAsync(link, upstream, client, fromServer: true);
        }
    }

    private async Task PumpAsync(Link link, Socket from, Socket to, bool fromServer)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    if (link.Blackholed)
                    {
                        // The other end never hears of it; the link goes once both ends have given up.
                        if (link.EndClosed())
                        {
                            Drop(link);
                        }

                        return;
                    }

                    // A clean half-close travels on; the link goes once both directions have ended.
                    to.Shutdown(SocketShutdown.Send);
                    if (link.EndClosed())
                    {
                        Drop(link);
                    }

                    return;
                }

                if (!link.Blackholed && !(fromServer && link.RepliesDropped))
                {
                    await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            if (link.Blackholed && !_stop.IsCancellationRequested)
            {
                // One end reset a blackholed link: the other end must not learn it from us.
                if (link.EndClosed())
                {
                    Drop(link);
                }

                return;
            }

            // One side was cut: cut the other too, as a broken path would.
            Drop(link);
        }
    }

    private void Drop(Link link)
    {
        if (_links.TryRemove(link, out _))
        {
            link.Reset();
        }
    }

    private sealed class Link(Socket client, Socket upstream)
    {
        private int _closedEnds;
        private volatile bool _blackholed;
        private volatile bool _repliesDropped;

        public bool RepliesDropped
        {
            get => _repliesDropped;
            set => _repliesDropped = value;
        }

        public bool Blackholed
        {
            get => _blackholed;
            set => _blackholed = value;
        }

        /// <summary>Counts one end gone; true once both are.</summary>
        public bool EndClosed() => Interlocked.Increment(ref _closedEnds) >= 2;

        public void Reset()
        {
            foreach (var socket in new[] { client, upstream })
            {
                try
                {
                    socket.LingerState = new LingerOption(true, 0);
                    socket.Close();
                }
                catch (ObjectDisposedException)
                {
                }
                catch (SocketException)
                {
                }
            }
        }
    }
}
