using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Tests.Support;

/// <summary>
/// A private redis-server on a free loopback port, in its own temp directory: started, stopped, killed and started
/// again on the same port; killed and its directory deleted on dispose. With <c>appendOnly</c> it keeps its data in an
/// AOF fsynced on every write, so what it acknowledged survives a kill -9; with <c>fsyncEverySecond</c> as well, it
/// fsyncs once a second as deploy/redis.conf does, so a kill -9 may lose the last second. When redis-server is not
/// installed it fails with the command that installs it; nothing that needs Redis is skipped.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private const string InstallHint = "apt-get install -y redis-server";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(30);

    private readonly string _executable;
    private readonly bool _appendOnly;
    private readonly bool _fsyncEverySecond;
    private readonly TextWriter? _echo;
    private readonly string _directory;
    private ObservedProcess? _process;

    /// <summary>
    /// Picks the port and the directory; <see cref="StartAsync"/> starts the server. <paramref name="echo"/>, when given,
    /// receives the server's output lines as <see cref="ObservedProcess"/> echoes them.
    /// </summary>
    public RedisServer(bool appendOnly = false, bool fsyncEverySecond = false, TextWriter? echo = null)
    {
        _executable = FindExecutable()
            ?? throw new InvalidOperationException(
                $"redis-server is not installed, and the tests and benchmarks that use Redis need a real one. Install it with: {InstallHint} (as root), then run them again.");
        _appendOnly = appendOnly;
        _fsyncEverySecond = fsyncEverySecond;
        _echo = echo;
        _directory = Directory.CreateTempSubdirectory("cp-redis-").FullName;
        Port = FreePort();
    }

    public int Port { get; }

    /// <summary>The server's working directory, where its AOF lives.</summary>
    public string DataDirectory => _directory;

    /// <summary>The running server's process id; null while it is stopped.</summary>
    public int? ProcessId => _process?.Id;

    /// <summary>The StackExchange.Redis configuration string: "127.0.0.1:port".</summary>
    public string Configuration => $"127.0.0.1:{Port}";

    /// <summary>Starts the server (again, after a stop or a kill, on the same port and with the same data directory) and waits until it accepts connections.</summary>
    public async Task StartAsync()
    {
        if (_process is not null)
        {
            throw new InvalidOperationException($"redis-server on port {Port} is already running");
        }

        string[] arguments =
        [
            "--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--protected-mode", "no", "--dir", _directory, "--save", "",
            .. _appendOnly ? ["--appendonly", "yes", "--appendfsync", _fsyncEverySecond ? "everysec" : "always"] : new[] { "--appendonly", "no" },
        ];
        var process = ObservedProcess.Start($"redis-server on port {Port}", _executable, arguments, _directory, echo: _echo);
        try
        {
            await process.WaitForLineAsync(l => l.Contains("Ready to accept connections", StringComparison.Ordinal), StartTimeout, "that it is ready to accept connections");
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }

        _process = process;
    }

    /// <summary>Shuts the server down as an operator would (SIGTERM), and waits until it has exited.</summary>
    public async Task StopAsync()
    {
        if (_process is { } process)
        {
            _process = null;
            await using (process)
            {
                if (await process.StopAsync(StopTimeout) is null)
                {
                    throw new InvalidOperationException($"{process.Description} did not exit within {StopTimeout.TotalSeconds:0} s of SIGTERM and was killed. Output:\n{process.Output}");
                }
            }
        }
    }

    /// <summary>Kills the server (SIGKILL, as a crash would), and waits until it has exited.</summary>
    public async Task KillAsync()
    {
        if (_process is { } process)
        {
            _process = null;
            await process.DisposeAsync();
        }
    }

    /// <summary>Runs redis-cli against the server (e.g. CLIENT PAUSE) and returns what it printed; throws when it fails.</summary>
    public async Task<string> CliAsync(params string[] arguments)
    {
        var cli = Path.Combine(Path.GetDirectoryName(_executable)!, "redis-cli");
        await using var process = ObservedProcess.Start("redis-cli", cli, ["-p", Port.ToString(CultureInfo.InvariantCulture), .. arguments]);
        var code = await process.WaitForExitAsync(StartTimeout);
        return code == 0
            ? process.StandardOutput
            : throw new InvalidOperationException($"redis-cli {string.Join(' ', arguments)} exited with {code}: {process.Output}");
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A file still being closed by the dying server; the temp folder is cleaned by the OS eventually.
        }
    }

    private static string? FindExecutable() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/bin").Append("/usr/local/bin")
            .Select(dir => Path.Combine(dir, "redis-server"))
            .FirstOrDefault(File.Exists);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
