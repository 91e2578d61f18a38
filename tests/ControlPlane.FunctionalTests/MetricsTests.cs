using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Xunit;
using static ControlPlane.FunctionalTests.FunctionalSpecs;

namespace ControlPlane.FunctionalTests;

/// <summary>
/// /metrics of a real scheduler and agent (processes, real Redis), scraped over HTTP and read as the Prometheus text
/// exposition format: the counters equal what happened.
/// </summary>
[Collection(FunctionalTestGroup.Name)]
public sealed class MetricsTests(RedisServerFixture redis)
{
    private const string Admin = "metrics-admin-token-0123456789";

    [Fact]
    public async Task Metrics_TwoRunsOnRealProcesses_CountersEqualWhatHappened()
    {
        await using var cluster = await FunctionalCluster.StartAsync(redis);
        var agentPort = FreePort();
        await cluster.StartAgentAsync("agent-m", slots: 2, arguments: ["--metrics-listen", $"127.0.0.1:{agentPort}"]);
        var failing = Spec("mixed", Shell("ok1", "exit 0"), Shell("ok2", "exit 0", "ok1"), Shell("bad", "exit 3").WithRetry(1, TimeSpan.FromMilliseconds(10)));
        var first = (await cluster.Client.SubmitRunAsync(failing)).Run;
        var second = (await cluster.Client.SubmitRunAsync(Spec("solo", Shell("only", "exit 0")))).Run;
        await cluster.WaitForStateAsync(first.Id, RunState.Failed);
        await cluster.WaitForStateAsync(second.Id, RunState.Succeeded);
        using var http = new HttpClient();
        var schedulerMetrics = new Uri(await cluster.HttpAddressAsync(), "/metrics");

        // The store-wide gauges are refreshed in the background at most every few seconds: scrape until they caught up.
        var scheduler = await ScrapeUntilAsync(http, schedulerMetrics, m =>
            m.ValueOrZero("controlplane_runs", ("state", "failed"), ("namespace", cluster.Namespace)) == 1
            && m.ValueOrZero("controlplane_runs", ("state", "succeeded"), ("namespace", cluster.Namespace)) == 1
            && m.ValueOrZero("controlplane_steps_finished_total", ("outcome", "failed")) == 1);

        Assert.Equal(4, scheduler.Value("controlplane_steps_dispatched_total"));
        Assert.Equal(3, scheduler.Value("controlplane_steps_finished_total", ("outcome", "succeeded")));
        Assert.Equal(1, scheduler.Value("controlplane_steps_finished_total", ("outcome", "failed")));
        Assert.Equal(4, scheduler.Value("controlplane_dispatch_latency_seconds_count"));
        Assert.Equal(4, scheduler.Value("controlplane_dispatch_latency_seconds_bucket", ("le", "+Inf")));
        Assert.Equal(4, scheduler.Value("controlplane_step_duration_seconds_count"));
        Assert.Equal(0, scheduler.Value("controlplane_runs", ("state", "running"), ("namespace", cluster.Namespace)));
        Assert.Equal(1, scheduler.Value("controlplane_agents_connected", ("namespace", cluster.Namespace)));
        Assert.Equal(0, scheduler.Value("controlplane_agent_slots", ("state", "used"), ("namespace", cluster.Namespace)));
        Assert.Equal(2, scheduler.Value("controlplane_agent_slots", ("state", "free"), ("namespace", cluster.Namespace)));
        Assert.Equal(0, scheduler.Value("controlplane_queue_ready_steps", ("queue", "default"), ("namespace", cluster.Namespace)));
        Assert.Equal(0, scheduler.ValueOrZero("controlplane_lease_expirations_total"));
        Assert.Equal(0, scheduler.ValueOrZero("controlplane_reports_rejected_total"));
        Assert.True(scheduler.Value("controlplane_store_call_duration_seconds_count", ("operation", "claim")) >= 1);
        Assert.True(scheduler.Value("controlplane_store_call_duration_seconds_count", ("operation", "report")) >= 1);
        Assert.Contains(scheduler.Samples, s => s.Name == "http_server_request_duration_seconds_count");
        Assert.Contains(scheduler.Samples, s => s.Name.StartsWith("dotnet_", StringComparison.Ordinal));

        var agent = await ScrapeUntilAsync(http, new Uri($"http://127.0.0.1:{agentPort}/metrics"), m =>
            m.ValueOrZero("controlplane_agent_steps_finished_total", ("outcome", "failed")) == 1);
        Assert.Equal(3, agent.Value("controlplane_agent_steps_finished_total", ("outcome", "succeeded")));
        Assert.Equal(1, agent.Value("controlplane_agent_steps_finished_total", ("outcome", "failed")));
        Assert.Equal(0, agent.Value("controlplane_agent_steps_running"));
        Assert.Equal(2, agent.Value("controlplane_agent_slots", ("state", "free")));
        Assert.Contains(agent.Samples, s => s.Name == "http_client_request_duration_seconds_count");

        // GetStats reports the latency this replica measured over the queue's dispatches.
        var stats = await cluster.Client.GetStatsAsync();
        Assert.NotNull(stats.Queues.Single(q => q.Queue == "default").DispatchLatencyP95);
    }

    [Fact]
    public async Task Metrics_AuthenticationOn_NeedsATokenThatMayRead()
    {
        await using var cluster = await FunctionalCluster.StartAuthenticatedAsync(redis, Admin);
        var reader = (await cluster.Client.CreateTokenAsync(new CreateTokenRequest { Name = "scraper", Role = TokenRole.Reader })).Token;
        var agentToken = (await cluster.Client.CreateTokenAsync(new CreateTokenRequest { Name = "agent-1", Role = TokenRole.Agent, AgentId = "agent-1" })).Token;
        var httpAddress = await cluster.HttpAddressAsync();
        var metrics = new Uri(httpAddress, "/metrics");
        using var http = new HttpClient();

        using var none = await http.GetAsync(metrics);
        using var unknown = await GetAsync(http, metrics, "an-unknown-token-0123456789");
        using var wrongRole = await GetAsync(http, metrics, agentToken);
        using var scraped = await GetAsync(http, metrics, reader);

        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.Contains("Bearer", none.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, wrongRole.StatusCode);
        Assert.Contains("may not call metrics", await wrongRole.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, scraped.StatusCode);
        Assert.Contains("controlplane_store_call_duration_seconds", await scraped.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // The gRPC listener (h2c) does not serve /metrics.
        using var grpcPort = new HttpRequestMessage(HttpMethod.Get, new Uri(new Uri(cluster.Address), "/metrics"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        grpcPort.Headers.Authorization = new AuthenticationHeaderValue("Bearer", reader);
        using var onGrpc = await http.SendAsync(grpcPort);
        Assert.Equal(HttpStatusCode.NotFound, onGrpc.StatusCode);
    }

    private static Task<HttpResponseMessage> GetAsync(HttpClient http, Uri uri, string token)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http.SendAsync(request);
    }

    private static async Task<Exposition> ScrapeUntilAsync(HttpClient http, Uri uri, Func<Exposition, bool> done)
    {
        using var timeout = new CancellationTokenSource(FunctionalCluster.Timeout);
        var last = "";
        while (true)
        {
            try
            {
                last = await http.GetStringAsync(uri, timeout.Token);
                var parsed = Exposition.Parse(last);
                if (done(parsed))
                {
                    return parsed;
                }
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
                throw new Xunit.Sdk.XunitException($"{uri} did not show the expected values within {FunctionalCluster.Timeout}; last scrape:\n{last}");
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(200, CancellationToken.None);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>One sample of the Prometheus text exposition format: name, labels, value.</summary>
internal sealed record PromSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>A parsed scrape (text format 0.0.4): comment lines skipped, each sample line read with its labels.</summary>
internal sealed class Exposition(IReadOnlyList<PromSample> samples)
{
    public IReadOnlyList<PromSample> Samples { get; } = samples;

    /// <summary>The one sample of <paramref name="name"/> carrying the given labels (others may be present); fails unless exactly one matches.</summary>
    public double Value(string name, params (string Key, string Value)[] labels)
    {
        var matches = Matching(name, labels);
        return matches.Count == 1
            ? matches[0].Value
            : throw new Xunit.Sdk.XunitException($"{matches.Count} samples of {name}{{{string.Join(',', labels.Select(l => $"{l.Key}=\"{l.Value}\""))}}}, expected one:\n{string.Join('\n', Samples.Where(s => s.Name == name))}");
    }

    /// <summary>The sum of the matching samples; 0 when there is none (an instrument that never recorded is not exported).</summary>
    public double ValueOrZero(string name, params (string Key, string Value)[] labels) => Matching(name, labels).Sum(s => s.Value);

    private List<PromSample> Matching(string name, (string Key, string Value)[] labels) =>
        Samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value)).ToList();

    public static Exposition Parse(string text)
    {
        var samples = new List<PromSample>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var i = 0;
            while (i < line.Length && line[i] is not ('{' or ' '))
            {
                i++;
            }

            var name = line[..i];
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            if (i < line.Length && line[i] == '{')
            {
                i++;
                while (line[i] != '}')
                {
                    var eq = line.IndexOf('=', i);
                    var key = line[i..eq].Trim();
                    i = eq + 2; // past ="
                    var value = new StringBuilder();
                    while (line[i] != '"')
                    {
                        if (line[i] == '\\')
                        {
                            i++;
                            value.Append(line[i] == 'n' ? '\n' : line[i]);
                        }
                        else
                        {
                            value.Append(line[i]);
                        }

                        i++;
                    }

                    labels[key] = value.ToString();
                    i++; // past the closing quote
                    if (line[i] == ',')
                    {
                        i++;
                    }
                }

                i++; // past }
            }

            var fields = line[i..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var number = fields[0] switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                var v => double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            samples.Add(new PromSample(name, labels, number));
        }

        return new Exposition(samples);
    }
}
