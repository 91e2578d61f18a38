using System.Text.RegularExpressions;
using ControlPlane.V1;
using Microsoft.Playwright;
using Xunit;
using static Microsoft.Playwright.Assertions;

namespace ControlPlane.Dashboard.Tests;

/// <summary>
/// The dashboard in a real browser (Debian's chromium, headless) against a real scheduler and agent: a run appears and
/// progresses live, its log follows, its gate is approved in the page, and tokens and roles shape what the page offers.
/// </summary>
public sealed class DashboardBrowserTests
{
    static DashboardBrowserTests() => SetDefaultExpectTimeout((float)DashboardHost.Timeout.TotalMilliseconds);

    [Fact]
    public async Task Dashboard_RunWithGate_ProgressesLiveAndSucceedsAfterApprovalInPage()
    {
        // Arrange: a scheduler without authentication, an agent, two finished runs for company, and the page open.
        await using var host = await DashboardHost.StartAsync(authenticated: false, withAgent: true);
        var release = Directory.CreateTempSubdirectory("cp-dashboard-");
        var go = Path.Combine(release.FullName, "go");
        var errors = new List<string>();
        var page = await host.OpenPageAsync(errors);
        await page.GotoAsync(host.DashboardUrl.ToString());
        await Expect(page.Locator("#runs-live")).ToHaveTextAsync("live");
        await Expect(page.Locator("#token-dialog")).Not.ToBeVisibleAsync();
        await Expect(page.Locator("#identity")).ToContainTextAsync("authentication off");

        // The page is never reloaded: this marker would vanish with a reload.
        await page.EvaluateAsync("() => { window.cpNoReload = 'same page'; }");
        await host.Client.SubmitRunAsync(Pipelines.Nightly());
        await host.Client.SubmitRunAsync(Pipelines.Flaky());
        await Expect(page.Locator("#runs-body tr[data-state='SUCCEEDED']")).ToHaveCountAsync(1);
        await Expect(page.Locator("#runs-body tr[data-state='FAILED']")).ToHaveCountAsync(1);

        // The filters: by state, then by labels (every one must match), then none again.
        var rows = page.Locator("#runs-body tr");
        await page.Locator("#filter-state").SelectOptionAsync("FAILED");
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(rows).ToContainTextAsync("import-customers");
        await page.Locator("#filter-state").SelectOptionAsync("");
        await page.Locator("#filter-label").FillAsync("team=data, source=crm");
        await page.Locator("#filter-label").PressAsync("Enter");
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(rows).ToContainTextAsync("import-customers");
        await page.Locator("#filter-label").FillAsync("");
        await page.Locator("#filter-label").PressAsync("Enter");
        await Expect(rows).ToHaveCountAsync(2);

        // Act 1: submit the release through the API; the list shows it, then shows it running.
        var run = (await host.Client.SubmitRunAsync(Pipelines.Release(go))).Run;
        var row = page.Locator($"#runs-body tr[data-run-id='{run.Id}']");
        await Expect(row).ToBeVisibleAsync();
        await Expect(row).ToHaveAttributeAsync("data-state", "RUNNING");
        await Expect(row).ToContainTextAsync("env=staging");
        await DashboardHost.ScreenshotAsync(page, "runs-list.png");

        // Act 2: open it; the build step runs at 50 % (it waits for the test's go file), its log follows live.
        await row.ClickAsync();
        var build = page.Locator("#dag [data-step='build']");
        await Expect(build).ToHaveAttributeAsync("data-state", "RUNNING");
        await Expect(build.Locator(".node-bar")).ToHaveAttributeAsync("data-progress", "50");
        await Expect(page.Locator("#dag [data-step='checkout']")).ToHaveAttributeAsync("data-state", "SUCCEEDED");
        await build.ClickAsync();
        var log = page.Locator("#step-log");
        await Expect(log).ToContainTextAsync("build: waiting for the artifact store");
        await Expect(log).Not.ToContainTextAsync("build: artifact stored");
        await DashboardHost.ScreenshotAsync(page, "run-page.png");
        await File.WriteAllTextAsync(go, "go");
        await Expect(log).ToContainTextAsync("build: artifact stored");

        // Act 3: approve the gate in the page, with a comment.
        var gate = page.Locator("#dag [data-step='approve']");
        await Expect(gate).ToHaveAttributeAsync("data-state", "WAITING_APPROVAL");
        await gate.ClickAsync();
        await page.Locator("#gate-comment").FillAsync("staging looks good, ship it");
        await DashboardHost.ScreenshotAsync(page, "run-gate.png");
        await page.Locator("#gate-approve").ClickAsync();

        // Assert: the run ends SUCCEEDED in the page, without a reload, and the decision is on the step.
        await Expect(page.Locator(".run-title .pill")).ToHaveTextAsync("Succeeded");
        await page.Locator("#dag [data-step='deploy']").ClickAsync();
        await page.Locator("[data-tab='output']").ClickAsync();
        await Expect(page.Locator(".tab-content")).ToContainTextAsync("release 1.4.2 deployed to staging");
        await DashboardHost.ScreenshotAsync(page, "run-succeeded.png");
        Assert.Equal("same page", await page.EvaluateAsync<string>("() => window.cpNoReload"));
        var final = await host.Client.GetRunAsync(run.Id);
        Assert.Equal(RunState.Succeeded, final.State);
        Assert.Equal("staging looks good, ship it", final.Steps.Single(s => s.Id == "approve").DecisionComment);
        Assert.Empty(errors);
        release.Delete(recursive: true);
    }

    [Fact]
    public async Task Dashboard_AuthenticationOn_PromptsForTokenExplainsABadOneAndHidesActionsFromAReader()
    {
        // Arrange: authentication on, a reader token, and a run whose gate waits (no agent needed).
        await using var host = await DashboardHost.StartAsync(authenticated: true, withAgent: false);
        var reader = (await host.Client.CreateTokenAsync(new CreateTokenRequest { Name = "viewer", Role = TokenRole.Reader })).Token;
        var run = (await host.Client.SubmitRunAsync(Pipelines.GateOnly())).Run;
        var errors = new List<string>();
        var page = await host.OpenPageAsync(errors);

        // Act 1: the page asks for a token; an unknown one is refused in words.
        await page.GotoAsync(host.DashboardUrl.ToString());
        var dialog = page.Locator("#token-dialog");
        await Expect(dialog).ToBeVisibleAsync();
        await page.Locator("#token-input").FillAsync("cpt_this-token-does-not-exist-0000");
        await page.Locator("#token-form button[type='submit']").ClickAsync();
        await Expect(page.Locator("#token-error")).ToContainTextAsync("does not know this token");
        await Expect(dialog).ToBeVisibleAsync();
        await DashboardHost.ScreenshotAsync(page, "token-refused.png");

        // Act 2: the reader's token is accepted; the page offers nothing a reader may not do.
        await page.Locator("#token-input").FillAsync(reader);
        await page.Locator("#token-form button[type='submit']").ClickAsync();
        await Expect(dialog).Not.ToBeVisibleAsync();
        await Expect(page.Locator("#identity")).ToContainTextAsync("reader");
        await Expect(page.Locator("#submit-button")).ToBeHiddenAsync();
        await Expect(page.Locator($"#runs-body tr[data-run-id='{run.Id}']")).ToBeVisibleAsync();
        await page.Locator($"#runs-body tr[data-run-id='{run.Id}']").ClickAsync();
        var gate = page.Locator("#dag [data-step='sign-off']");
        await Expect(gate).ToHaveAttributeAsync("data-state", "WAITING_APPROVAL");
        await gate.ClickAsync();

        // Assert: no run action, no gate decision; the token lives in the tab's session only.
        await Expect(page.Locator("#step-panel")).ToContainTextAsync("your token may not decide it");
        await Expect(page.Locator("[data-action]")).ToHaveCountAsync(0);
        await Expect(page.Locator("#gate-approve")).ToHaveCountAsync(0);
        Assert.Equal(reader, await page.EvaluateAsync<string>("() => sessionStorage.getItem('cp-token')"));
        Assert.Equal(0, await page.EvaluateAsync<int>("() => localStorage.length"));
        Assert.Empty(errors);
    }

    [Fact]
    public async Task Dashboard_OperatorToken_SeesActionsAndAgentsAndQueues()
    {
        // Arrange: authentication on, an agent, an operator token signed in.
        await using var host = await DashboardHost.StartAsync(authenticated: true, withAgent: true);
        var operatorToken = (await host.Client.CreateTokenAsync(new CreateTokenRequest { Name = "ops", Role = TokenRole.Operator })).Token;
        var run = (await host.Client.SubmitRunAsync(Pipelines.GateOnly())).Run;
        var errors = new List<string>();
        var page = await host.OpenPageAsync(errors);
        await page.GotoAsync(host.DashboardUrl.ToString());
        await page.Locator("#token-input").FillAsync(operatorToken);
        await page.Locator("#token-form button[type='submit']").ClickAsync();

        // Act + Assert: the run offers cancel; the agents view lists the agent with a drain button; queues show caps.
        await page.GotoAsync($"{host.DashboardUrl}#/runs/{run.Id}");
        await Expect(page.Locator("[data-action='CancelRun']")).ToBeEnabledAsync();
        await page.Locator("nav a[data-nav='agents']").ClickAsync();
        var agent = page.Locator("tr[data-agent='dash-agent']");
        await Expect(agent).ToContainTextAsync("0 / 4");
        await Expect(agent.Locator("[data-action='DrainAgent']")).ToBeVisibleAsync();
        await DashboardHost.ScreenshotAsync(page, "agents.png");
        await Expect(agent).ToContainTextAsync("Connected");
        await agent.Locator("[data-action='DrainAgent']").ClickAsync();

        // An idle agent finishes draining at once and leaves: the row shows one state or the other.
        await Expect(agent).ToContainTextAsync(new System.Text.RegularExpressions.Regex("Draining|Disconnected"));
        await page.Locator("nav a[data-nav='queues']").ClickAsync();
        await Expect(page.Locator("#queues-table")).ToContainTextAsync("default");
        await DashboardHost.ScreenshotAsync(page, "queues.png");
        Assert.Empty(errors);
    }

    [Fact]
    public async Task Dashboard_SubmitPipelineFile_OpensTheNewRunOrSaysWhereTheFileIsWrong()
    {
        // Arrange: no authentication, an agent, the page open.
        await using var host = await DashboardHost.StartAsync(authenticated: false, withAgent: true);
        var errors = new List<string>();
        var page = await host.OpenPageAsync(errors);
        await page.GotoAsync(host.DashboardUrl.ToString());
        await Expect(page.Locator("#runs-live")).ToHaveTextAsync("live");

        // Act 1: a file with an unknown need is refused; the page names the file's line.
        const string broken = "name: broken\nsteps:\n  - id: a\n    framework: shell\n    run: echo a\n    needs: [missing]\n";
        await page.Locator("#submit-file").SetInputFilesAsync(new FilePayload { Name = "broken.yaml", MimeType = "text/yaml", Buffer = System.Text.Encoding.UTF8.GetBytes(broken) });
        var toast = page.Locator(".toast-error");
        await Expect(toast).ToContainTextAsync("Submitting broken.yaml failed");
        await Expect(toast).ToContainTextAsync(new Regex(@"broken\.yaml:\d+:\d+"));

        // Act 2: a good file starts a run and the page opens it.
        const string good = "name: from-the-browser\nlabels:\n  origin: dashboard\nsteps:\n  - id: hello\n    framework: shell\n    run: echo hello from the browser\n";
        await page.Locator("#submit-file").SetInputFilesAsync(new FilePayload { Name = "good.yaml", MimeType = "text/yaml", Buffer = System.Text.Encoding.UTF8.GetBytes(good) });

        // Assert: the run page shows the run to its end.
        await Expect(page.Locator(".run-title h1")).ToHaveTextAsync("from-the-browser");
        await Expect(page.Locator(".run-title .pill")).ToHaveTextAsync("Succeeded");
        await Expect(page.Locator("#step-log")).ToContainTextAsync("hello from the browser");
        Assert.Empty(errors);
    }
}
