using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace ControlPlane.Tests.Support;

/// <summary>
/// A daemon started the way systemd starts a Type=notify service, as far as Microsoft.Extensions.Hosting.Systemd can
/// tell: NOTIFY_SOCKET names a Unix datagram socket this class reads, and the daemon's parent process is named
/// "systemd" (a shell script file of that name: the kernel names a script's process after the file).
/// </summary>
public sealed partial class FakeSystemd : IAsyncDisposable
{
    private const string Script = """
        #!/bin/sh
        # Stands in for the service manager: the daemon below is our child, so its parent's comm is this file's name.
        "$@" &
        child=$!
        echo "fake-systemd: comm $(cat /proc/$$/comm) child $child"
        wait $child
        """;

    private readonly DirectoryInfo _dir;
    private readonly Socket _socket;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<string> _notifications = [];
    private readonly List<(string State, TaskCompletionSource Seen)> _waiters = [];
    private readonly Task _receiving;
    private ObservedProcess _process = null!;

    private FakeSystemd(DirectoryInfo dir)
    {
        _dir = dir;
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _socket.Bind(new UnixDomainSocketEndPoint(Path.Combine(dir.FullName, "notify")));
        _receiving = ReceiveAsync();
    }

    /// <summary>The daemon's process id (the script's child).</summary>
    public int DaemonPid { get; private set; }

    /// <summary>Everything the script and the daemon printed so far.</summary>
    public string Output => _process.Output;

    /// <summary>Every state the daemon sent, in order (READY=1, STOPPING=1, ...).</summary>
    public IReadOnlyList<string> Notifications
    {
        get
        {
            lock (_notifications)
            {
                return [.. _notifications];
            }
        }
    }

    /// <summary>Starts <paramref name="fileName"/> <paramref name="arguments"/> under the fake service manager, and checks it really is one: the parent's comm is "systemd".</summary>
    public static async Task<FakeSystemd> StartAsync(string description, TimeSpan timeout, string fileName, params string[] arguments)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("systemd detection reads /proc/PPID/comm, which only Linux has");
        }

        // A short path: a Unix socket path must fit in 108 bytes.
        var dir = Directory.CreateTempSubdirectory("cp-sd-");
        var systemd = new FakeSystemd(dir);
        var script = Path.Combine(dir.FullName, "systemd");
        await File.WriteAllTextAsync(script, Script.ReplaceLineEndings("\n") + "\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var environment = new Dictionary<string, string> { ["NOTIFY_SOCKET"] = Path.Combine(dir.FullName, "notify") };
        systemd._process = ObservedProcess.Start(description, script, [fileName, .. arguments], dir.FullName, environment);
        var line = await systemd._process.WaitForLineAsync(l => StartLine().IsMatch(l), timeout, "the fake systemd's start line");
        var match = StartLine().Match(line);
        if (match.Groups[1].Value != "systemd")
        {
            throw new InvalidOperationException($"the kernel named the script's process '{match.Groups[1].Value}', not 'systemd'; the daemon would not think it runs under systemd");
        }

        systemd.DaemonPid = int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture);
        return systemd;
    }

    /// <summary>Waits until the daemon has sent <paramref name="state"/> (e.g. "READY=1"); fails with the output on timeout.</summary>
    public async Task WaitForNotificationAsync(string state, TimeSpan timeout)
    {
        TaskCompletionSource seen;
        lock (_notifications)
        {
            if (_notifications.Contains(state))
            {
                return;
            }

            seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((state, seen));
        }

        if (await Task.WhenAny(seen.Task, Task.Delay(timeout)).ConfigureAwait(false) != seen.Task)
        {
            throw new TimeoutException($"no {state} on NOTIFY_SOCKET within {timeout.TotalSeconds:0} s; received [{string.Join(", ", Notifications)}]. Output:\n{Output}");
        }
    }

    /// <summary>Sends the daemon SIGTERM, as systemctl stop does.</summary>
    public async Task TerminateDaemonAsync()
    {
        using var kill = Process.Start("kill", ["-s", "TERM", DaemonPid.ToString(CultureInfo.InvariantCulture)])!;
        await kill.WaitForExitAsync().ConfigureAwait(false);
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -s TERM {DaemonPid} failed with exit code {kill.ExitCode}. Output:\n{Output}");
        }
    }

    /// <summary>The daemon's exit code (the script exits with it); null when it did not exit in time.</summary>
    public Task<int?> WaitForExitAsync(TimeSpan timeout) => _process.WaitForExitAsync(timeout);

    /// <summary>Waits for a line the daemon prints.</summary>
    public Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, string what) => _process.WaitForLineAsync(match, timeout, what);

    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync().ConfigureAwait(false);
        await _stop.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        try
        {
            await _receiving.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Closed on purpose.
        }

        _stop.Dispose();
        _dir.Delete(recursive: true);
    }

    private async Task ReceiveAsync()
    {
        var buffer = new byte[4096];
        while (!_stop.IsCancellationRequested)
        {
            var length = await _socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token).ConfigureAwait(false);
            var states = Encoding.UTF8.GetString(buffer, 0, length).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            List<TaskCompletionSource> seen = [];
            lock (_notifications)
            {
                _notifications.AddRange(states);
                for (var i = _waiters.Count - 1; i >= 0; i--)
                {
                    if (states.Contains(_waiters[i].State))
                    {
                        seen.Add(_waiters[i].Seen);
                        _waiters.RemoveAt(i);
                    }
                }
            }

            foreach (var waiter in seen)
            {
                waiter.TrySetResult();
            }
        }
    }

    [GeneratedRegex(@"^fake-systemd: comm (\S+) child (\d+)$")]
    private static partial Regex StartLine();
}
