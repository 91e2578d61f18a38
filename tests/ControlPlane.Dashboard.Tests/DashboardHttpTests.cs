using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using ControlPlane.V1;
using Xunit;

namespace ControlPlane.Dashboard.Tests;

/// <summary>
/// What the dashboard relies on over plain HTTP: its assets open to anyone with a strict CSP, and a refused JSON call
/// answered as HTTP 401/403 with the JSON error shape ({code, message, details[]}) a browser can read.
/// </summary>
public sealed class DashboardHttpTests
{
    [Fact]
    public async Task Assets_WithAuthenticationOn_ServedWithoutTokenWithTypesCspAndRevalidation()
    {
        await using var host = await ServerOnlyAsync();
        using var http = new HttpClient { BaseAddress = host.Server.HttpAddress };

        using var page = await http.GetAsync(new Uri("/", UriKind.Relative));
        using var script = await http.GetAsync(new Uri("/dashboard/app.js", UriKind.Relative));
        using var style = await http.GetAsync(new Uri("/dashboard/app.css", UriKind.Relative));
        using var missing = await http.GetAsync(new Uri("/dashboard/nope.js", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("default-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-inline", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.Equal("text/javascript", script.Content.Headers.ContentType?.MediaType);
        Assert.Equal("text/css", style.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.True(script.Headers.CacheControl?.NoCache);
        using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, new Uri("/", UriKind.Relative)));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);

        // The ETag answers a revalidation with 304 and no body.
        using var again = new HttpRequestMessage(HttpMethod.Get, new Uri("/dashboard/app.js", UriKind.Relative));
        again.Headers.IfNoneMatch.Add(script.Headers.ETag!);
        using var revalidated = await http.SendAsync(again);
        Assert.Equal(HttpStatusCode.NotModified, revalidated.StatusCode);

        // The page has no inline script: every script is a file the CSP allows.
        var html = await page.Content.ReadAsStringAsync();
        Assert.DoesNotMatch("<script(?![^>]*\\bsrc=)", html);
    }

    [Fact]
    public async Task JsonApi_WithoutTokenOrWithABadOne_Http401WithJsonError()
    {
        await using var host = await ServerOnlyAsync();
        using var http = new HttpClient { BaseAddress = host.Server.HttpAddress };

        using var none = await http.GetAsync(new Uri("/v1/runs", UriKind.Relative));
        using var bad = new HttpRequestMessage(HttpMethod.Get, new Uri("/v1/auth/whoami", UriKind.Relative));
        bad.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "cpt_this-token-does-not-exist-0000");
        using var badResponse = await http.SendAsync(bad);

        await AssertJsonErrorAsync(none, HttpStatusCode.Unauthorized, 16, "ERROR_REASON_TOKEN_MISSING", "no token given");
        await AssertJsonErrorAsync(badResponse, HttpStatusCode.Unauthorized, 16, "ERROR_REASON_TOKEN_UNKNOWN", "does not know this token");
    }

    [Fact]
    public async Task JsonApi_ReaderTokenCancelling_Http403WithJsonErrorAndWhoAmIListsItsMethods()
    {
        await using var host = await ServerOnlyAsync();
        var reader = (await host.Client.CreateTokenAsync(new CreateTokenRequest { Name = "viewer", Role = TokenRole.Reader })).Token;
        var run = (await host.Client.SubmitRunAsync(Pipelines.GateOnly())).Run;
        using var http = new HttpClient { BaseAddress = host.Server.HttpAddress };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", reader);

        using var cancel = await http.PostAsync(new Uri($"/v1/runs/{run.Id}:cancel", UriKind.Relative), new StringContent("{}", System.Text.Encoding.UTF8, "application/json"));
        using var who = await http.GetAsync(new Uri("/v1/auth/whoami", UriKind.Relative));

        await AssertJsonErrorAsync(cancel, HttpStatusCode.Forbidden, 7, "ERROR_REASON_ROLE_NOT_ALLOWED", "");
        using var whoJson = JsonDocument.Parse(await who.Content.ReadAsStringAsync());
        var methods = whoJson.RootElement.GetProperty("allowedMethods").EnumerateArray().Select(m => m.GetString()).ToList();
        Assert.Contains("/controlplane.v1.RunService/WatchRun", methods);
        Assert.DoesNotContain("/controlplane.v1.RunService/CancelRun", methods);
    }

    private static async Task AssertJsonErrorAsync(HttpResponseMessage response, HttpStatusCode status, int code, string reason, string message)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"HTTP {(int)response.StatusCode}, expected {(int)status}: {body}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(body);
        Assert.Equal(code, json.RootElement.GetProperty("code").GetInt32());
        Assert.Contains(message, json.RootElement.GetProperty("message").GetString(), StringComparison.Ordinal);
        var info = json.RootElement.GetProperty("details").EnumerateArray().Single();
        Assert.Equal("type.googleapis.com/google.rpc.ErrorInfo", info.GetProperty("@type").GetString());
        Assert.Equal(reason, info.GetProperty("reason").GetString());
    }

    private static Task<DashboardHost> ServerOnlyAsync() => DashboardHost.StartAsync(authenticated: true, withAgent: false, browser: false);
}
