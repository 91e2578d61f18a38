using System.Text.RegularExpressions;
using ControlPlane.Cli.Internal;
using ControlPlane.Scheduler;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using Xunit;

namespace ControlPlane.Cli.Tests;

/// <summary>cpctl run ls --watch against a real scheduler (embedded store), through a proxy that cuts the stream.</summary>
public sealed class CpctlRunListWatchTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task RunLsWatch_TableThenOneLinePerChange_ResumesFromTheLastCursorWhenCutOff()
    {
        await using var store = new EmbeddedRunStore();
        var before = (await store.SubmitRunAsync(Spec("before", "data"), null)).Run;
        await using var server = new SchedulerServer(new SchedulerOptions { Listen = "127.0.0.1:0", HttpListen = "off" }, store);
        await server.StartAsync();
        await using var proxy = new TcpCutProxy(server.Addresses[0].Port);

        var output = new StringWriter();
        var synchronized = TextWriter.Synchronized(output);
        using var stop = new CancellationTokenSource();
        var env = new Dictionary<string, string> { ["CP_SCHEDULER"] = proxy.Address };
        var errors = new StringWriter();
        var context = new CliContext(synchronized, TextWriter.Synchronized(errors), env);
        var watching = Internal.Cpctl.RunAsync(["run", "ls", "--watch", "--label", "team=data"], context, handleTermination: false, stop.Token);

        await WaitForAsync(synchronized, output, $@"^{before.Id}\s+before\s");
        var added = (await store.SubmitRunAsync(Spec("added", "data"), null)).Run;
        var other = (await store.SubmitRunAsync(Spec("other", "web"), null)).Run;
        await WaitForAsync(synchronized, output, $@"^\d\d:\d\d:\d\d  {added.Id}  RUNNING  added  team=data$");

        // The connection breaks; a run submitted meanwhile is printed once the watch is back, from its last cursor.
        Assert.Equal(1, proxy.CutAll());
        var whileAway = (await store.SubmitRunAsync(Spec("while-away", "data"), null)).Run;
        await WaitForAsync(synchronized, output, $@"  {whileAway.Id}  RUNNING  while-away  team=data$", () => $"cpctl {(watching.IsCompleted ? "ended" : "running")}; stderr: {errors}");

        await stop.CancelAsync();
        Assert.Equal(ExitCodes.Interrupted, await watching.WaitAsync(Timeout));
        var text = Read(synchronized, output);
        Assert.DoesNotContain(other.Id, text, StringComparison.Ordinal);
        Assert.True(proxy.Accepted >= 2, $"{proxy.Accepted} connections");

        // Resumed from its cursor: one table (no second snapshot), each change printed once.
        Assert.True(Regex.Count(text, "^ID ", RegexOptions.Multiline) == 1, text);
        Assert.True(Regex.Count(text, $"{added.Id}  RUNNING") == 1, text);
        Assert.True(Regex.Count(text, whileAway.Id) == 1, text);
    }

    private static RunSpec Spec(string name, string team) => new()
    {
        Name = name,
        Labels = { ["team"] = team },
        Steps = { new StepSpec { Id = "g", Kind = StepKind.Gate } },
    };

    private static string Read(TextWriter synchronized, StringWriter output)
    {
        lock (synchronized)
        {
            return output.ToString();
        }
    }

    private static async Task WaitForAsync(TextWriter synchronized, StringWriter output, string pattern, Func<string>? state = null)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        while (!Regex.IsMatch(Read(synchronized, output), pattern, RegexOptions.Multiline))
        {
            await Task.Delay(20, timeout.Token).ContinueWith(t =>
            {
                if (t.IsCanceled)
                {
                    throw new TimeoutException($"no line matching {pattern} in:\n{Read(synchronized, output)}\n{state?.Invoke()}");
                }
            });
        }
    }
}
