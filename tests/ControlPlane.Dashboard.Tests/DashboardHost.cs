using ControlPlane.Agent;
using ControlPlane.Client;
using ControlPlane.Scheduler;
using ControlPlane.V1;
using Microsoft.Playwright;

namespace ControlPlane.Dashboard.Tests;

/// <summary>
/// A real scheduler (in-memory store, gRPC and HTTP listeners on free loopback ports), optionally one agent running
/// shell steps, and Debian's chromium driven headless by Playwright at a laptop's screen size.
/// </summary>
public sealed class DashboardHost : IAsyncDisposable
{
    /// <summary>Debian's chromium (apt-get install -y chromium); Playwright never downloads a browser of its own.</summary>
    public const string ChromiumPath = "/usr/bin/chromium";

    public const string AdminSecret = "cpt_dashboard-admin-token-0123456789";

    /// <summary>How long any one expectation may take before the test fails.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private readonly CancellationTokenSource _agentStop = new();
    private Task? _agent;
    private IPlaywright? _playwright;

    private DashboardHost(SchedulerServer server, ControlPlaneClient client)
    {
        Server = server;
        Client = client;
    }

    public SchedulerServer Server { get; }

    /// <summary>A gRPC client (the admin token when authentication is on).</summary>
    public ControlPlaneClient Client { get; }

    public IBrowser? Browser { get; private set; }

    public Uri DashboardUrl => Server.HttpAddress ?? throw new InvalidOperationException("The scheduler has no HTTP listener.");

    /// <summary>Where screenshots go: TestResults/dashboard/ beside the test assembly.</summary>
    public static string ArtifactsDirectory { get; } = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "TestResults", "dashboard")).FullName;

    public static async Task<DashboardHost> StartAsync(bool authenticated, bool withAgent, bool browser = true)
    {
        if (browser && !File.Exists(ChromiumPath))
        {
            throw new InvalidOperationException($"{ChromiumPath} is missing; the dashboard tests drive Debian's chromium. Install it: apt-get install -y chromium");
        }

        var options = new SchedulerOptions
        {
            Listen = "127.0.0.1:0",
            HttpListen = "127.0.0.1:0",
            AdminToken = authenticated ? AdminSecret : null,
            HeartbeatInterval = TimeSpan.FromSeconds(1),
        };
        var server = new SchedulerServer(options);
        await server.StartAsync();
        var address = server.Addresses[0].ToString().TrimEnd('/');
        var client = new ControlPlaneClient(new ControlPlaneClientOptions { Address = address, BearerToken = authenticated ? AdminSecret : null });
        var host = new DashboardHost(server, client);
        if (withAgent)
        {
            var agentOptions = new AgentOptions
            {
                SchedulerAddress = address,
                AgentId = "dash-agent",
                Slots = 4,
                Token = authenticated ? AdminSecret : null,
                HeartbeatInterval = TimeSpan.FromSeconds(1),
                ShutdownGracePeriod = TimeSpan.FromSeconds(5),
            };
            host._agent = AgentRunner.RunAsync(agentOptions, AgentRunner.CreateDefaultFrameworks(agentOptions), null, host._agentStop.Token);
        }

        if (browser)
        {
            host._playwright = await Playwright.CreateAsync();
            host.Browser = await host._playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = ChromiumPath, Headless = true });
        }

        return host;
    }

    /// <summary>A fresh browser tab (its own sessionStorage) at 1366x768, failing the test on any script error.</summary>
    public async Task<IPage> OpenPageAsync(List<string> scriptErrors)
    {
        var context = await Browser!.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1366, Height = 768 } });
        context.SetDefaultTimeout((float)Timeout.TotalMilliseconds);
        var page = await context.NewPageAsync();
        page.PageError += (_, error) => scriptErrors.Add(error);
        page.Console += (_, message) =>
        {
            // The CSP reports a blocked inline script or style as a console error.
            if (message.Type == "error" && message.Text.Contains("Content Security Policy", StringComparison.Ordinal))
            {
                scriptErrors.Add(message.Text);
            }
        };
        return page;
    }

    public static Task ScreenshotAsync(IPage page, string name) =>
        page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ArtifactsDirectory, name) });

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.CloseAsync();
        }

        _playwright?.Dispose();
        await _agentStop.CancelAsync();
        if (_agent is not null)
        {
            try
            {
                await _agent;
            }
            catch (OperationCanceledException)
            {
            }
        }

        Client.Dispose();
        await Server.DisposeAsync();
        _agentStop.Dispose();
    }
}
