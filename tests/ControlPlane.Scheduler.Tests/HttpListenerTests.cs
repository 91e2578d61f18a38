using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

/// <summary>
/// The HTTP listener beside the gRPC one: where it listens, the probes, and the JSON API transcoded from the services'
/// google.api.http routes (the dashboard's only way in), over real HTTP/1.1.
/// </summary>
public sealed class HttpListenerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData("127.0.0.1:7070", null, "127.0.0.1:7080")]
    [InlineData("127.0.0.1:0", null, "127.0.0.1:0")]
    [InlineData("[::1]:9000", null, "[::1]:9010")]
    [InlineData("127.0.0.1:7070", "127.0.0.1:9999", "127.0.0.1:9999")]
    [InlineData("127.0.0.1:7070", "off", null)]
    [InlineData("127.0.0.1:7070", " OFF ", null)]
    public void HttpEndpoint_DefaultsBesideListen_OrAsGiven(string listen, string? httpListen, string? expected)
    {
        var options = new SchedulerOptions { Listen = listen, HttpListen = httpListen };

        options.Validate();

        Assert.Equal(expected, options.HttpEndpoint?.ToString());
    }

    [Theory]
    [InlineData("nonsense", "HttpListen 'nonsense' has no port")]
    [InlineData("example.com:80", "HttpListen 'example.com:80' has host 'example.com', which is not an IP address")]
    [InlineData("127.0.0.1:70000", "HttpListen '127.0.0.1:70000' has an invalid port '70000'")]
    public void HttpEndpoint_Malformed_ErrorNamesTheSetting(string httpListen, string expected)
    {
        var options = new SchedulerOptions { Listen = "127.0.0.1:0", HttpListen = httpListen };

        var ex = Assert.Throws<ArgumentException>(options.Validate);

        Assert.StartsWith(expected, ex.Message, StringComparison.Ordinal);
        Assert.Equal(nameof(SchedulerOptions.HttpListen), ex.ParamName);
    }

    [Fact]
    public void HttpEndpoint_SamePortAsListen_RefusedNamingBoth()
    {
        var options = new SchedulerOptions { Listen = "127.0.0.1:7070", HttpListen = "127.0.0.1:7070" };

        var ex = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Equal(nameof(SchedulerOptions.HttpListen), ex.ParamName);
        Assert.Contains("takes Listen's port 7070", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HttpEndpoint_ListenPortLeavesNoRoom_SaysToGiveHttpListen()
    {
        var options = new SchedulerOptions { Listen = "127.0.0.1:65530" };

        var ex = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Contains("give --http-listen HOST:PORT (or off)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HttpEndpoint_NotLoopbackWithoutTlsAndTokens_RefusedLikeListen()
    {
        var options = new SchedulerOptions { Listen = "127.0.0.1:0", HttpListen = "0.0.0.0:0" };

        var ex = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Equal(nameof(SchedulerOptions.HttpListen), ex.ParamName);
        Assert.Contains("not a loopback address", ex.Message, StringComparison.Ordinal);
        Assert.Contains("--insecure", ex.Message, StringComparison.Ordinal);
        new SchedulerOptions { Listen = "127.0.0.1:0", HttpListen = "0.0.0.0:0", Insecure = true }.Validate();
    }

    [Fact]
    public async Task Off_NoHttpListener()
    {
        await using var server = new SchedulerServer(new SchedulerOptions { Listen = "127.0.0.1:0", HttpListen = "off" }, new EmbeddedRunStore(new RunStoreOptions()));
        await server.StartAsync();

        Assert.Null(server.HttpAddress);
        Assert.Single(server.Addresses);
    }

    [Fact]
    public async Task Probes_HealthzAlwaysReadyzFollowsTheStore()
    {
        var unreachable = ServiceHealthTests.UnreachableStore.Wrap(new EmbeddedRunStore(new RunStoreOptions()));
        await using var server = new SchedulerServer(new SchedulerOptions { Listen = "127.0.0.1:0" }, unreachable.Store);
        await server.StartAsync();
        using var http = Client(server);

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("healthz", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("readyz", UriKind.Relative))).StatusCode);
        unreachable.Failing = true;
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("healthz", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync(new Uri("readyz", UriKind.Relative))).StatusCode);
        unreachable.Failing = false;
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("readyz", UriKind.Relative))).StatusCode);
    }

    [Fact]
    public async Task JsonApi_SubmitGetAndErrors_SameRulesAsGrpc()
    {
        await using var server = new SchedulerServer(new SchedulerOptions { Listen = "127.0.0.1:0" }, new EmbeddedRunStore(new RunStoreOptions()));
        await server.StartAsync();
        using var http = Client(server);

        var submitted = await PostJsonAsync(http, "v1/runs", """{"spec":{"name":"json","labels":{"via":"http"},"steps":[{"id":"a","framework":"shell","command":"echo hi"}]}}""");
        var runId = submitted.GetProperty("run").GetProperty("id").GetString()!;
        var got = await http.GetFromJsonAsync<JsonElement>(new Uri($"v1/runs/{runId}", UriKind.Relative));
        var bad = await http.PostAsync(new Uri("v1/runs", UriKind.Relative), Json("""{"spec":{"name":"bad","steps":[{"id":"a","framework":"nope"}]}}"""));
        var missing = await http.GetAsync(new Uri("v1/runs/no-such-run", UriKind.Relative));

        Assert.Equal("http", got.GetProperty("run").GetProperty("labels").GetProperty("via").GetString());
        Assert.Equal("RUN_STATE_PENDING", got.GetProperty("run").GetProperty("state").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var badBody = await bad.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(3, badBody.GetProperty("code").GetInt32());
        var violation = badBody.GetProperty("details")[0];
        Assert.Equal("type.googleapis.com/google.rpc.BadRequest", violation.GetProperty("@type").GetString());
        Assert.Equal("steps[0].framework", violation.GetProperty("fieldViolations")[0].GetProperty("field").GetString());
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        var missingBody = await missing.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("ERROR_REASON_RUN_NOT_FOUND", missingBody.GetProperty("details")[0].GetProperty("reason").GetString());
    }

    [Fact]
    public async Task JsonApi_WatchRun_StreamsOneJsonObjectPerLineUntilTheRunEnds()
    {
        await using var server = new SchedulerServer(new SchedulerOptions { Listen = "127.0.0.1:0" }, new EmbeddedRunStore(new RunStoreOptions()));
        await server.StartAsync();
        using var http = Client(server);
        var submitted = await PostJsonAsync(http, "v1/runs", """{"spec":{"name":"watched","steps":[{"id":"a","framework":"shell","command":"sleep 60"}]}}""");
        var runId = submitted.GetProperty("run").GetProperty("id").GetString()!;

        using var response = await http.GetAsync(new Uri($"v1/runs/{runId}:watch", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var first = JsonDocument.Parse((await reader.ReadLineAsync())!).RootElement;
        await PostJsonAsync(http, $"v1/runs/{runId}:cancel", """{"reason":"done watching"}""");
        var seqs = new List<long> { first.GetProperty("event").GetProperty("seq").GetInt64() };
        string? lastState = null;
        while (await reader.ReadLineAsync() is { } line)
        {
            var e = JsonDocument.Parse(line).RootElement.GetProperty("event");
            seqs.Add(e.GetProperty("seq").GetInt64());
            if (e.TryGetProperty("runStateChanged", out var changed))
            {
                lastState = changed.GetProperty("toState").GetString();
            }
        }

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Enumerable.Range(1, seqs.Count).Select(i => (long)i), seqs);
        Assert.Equal("RUN_STATE_CANCELLED", lastState);
    }

    [Fact]
    public async Task JsonApi_BodyOverTheMethodsLimit_413WithTheLimitInWords()
    {
        await using var server = new SchedulerServer(new SchedulerOptions { Listen = "127.0.0.1:0" }, new EmbeddedRunStore(new RunStoreOptions()));
        await server.StartAsync();
        using var http = Client(server);
        var comment = new string('x', 70 * 1024);

        var response = await http.PostAsync(new Uri("v1/runs/r1:cancel", UriKind.Relative), Json($$"""{"reason":"{{comment}}"}"""));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(8, body.GetProperty("code").GetInt32());
        Assert.Contains("accepts at most 65,536 bytes", body.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("rebind.example.com", HttpStatusCode.MisdirectedRequest)]
    [InlineData("127.0.0.2.nip.io", HttpStatusCode.MisdirectedRequest)]
    [InlineData("localhost", HttpStatusCode.OK)]
    [InlineData("127.0.0.1", HttpStatusCode.OK)]
    [InlineData("[::1]", HttpStatusCode.OK)]
    public async Task LoopbackListener_RequestNamingAnotherHost_RefusedAgainstDnsRebinding(string host, HttpStatusCode expected)
    {
        await using var server = new SchedulerServer(new SchedulerOptions { Listen = "127.0.0.1:0" }, new EmbeddedRunStore(new RunStoreOptions()));
        await server.StartAsync();
        using var http = Client(server);
        var port = server.HttpAddress!.Port;

        // What a page whose domain now resolves to 127.0.0.1 sends: its own name in Host, a JSON body, same origin.
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("v1/runs", UriKind.Relative))
        {
            Content = Json("""{"spec":{"name":"rebound","steps":[{"id":"a","framework":"shell","command":"true"}]}}"""),
        };
        request.Headers.Host = $"{host}:{port}";
        var response = await http.SendAsync(request);
        var runs = await server.Store.ListRunsAsync(new RunQuery());

        Assert.Equal(expected, response.StatusCode);
        Assert.Equal(expected == HttpStatusCode.OK ? 1 : 0, runs.Runs.Count);
        if (expected != HttpStatusCode.OK)
        {
            Assert.Contains($"open http://127.0.0.1:{port}/", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
    }

    private static HttpClient Client(SchedulerServer server) =>
        new() { BaseAddress = server.HttpAddress ?? throw new InvalidOperationException("no HTTP listener"), Timeout = Timeout };

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> PostJsonAsync(HttpClient http, string path, string json)
    {
        var response = await http.PostAsync(new Uri(path, UriKind.Relative), Json(json));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"POST {path} answered {(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement;
    }
}
