using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace ControlPlane.Cli.Internal;

/// <summary><c>cpctl top</c> on a terminal: tables of queues, caps, agents and running steps, redrawn in place.</summary>
internal sealed class LiveTopView
{
    private readonly IAnsiConsole _console;
    private readonly string _address;

    public LiveTopView(TextWriter output, string address)
    {
        _console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
        _address = address;
    }

    /// <summary>Draws one snapshot and leaves it on the screen (<c>--once</c>).</summary>
    public void WriteOnce(TopSnapshot snapshot) => _console.Write(Render(snapshot, problem: null));

    /// <summary>
    /// Redraws in place whatever <paramref name="loop"/> hands to the callback it gets, until the loop ends; the live
    /// display restores the cursor however it ends (Ctrl+C included).
    /// </summary>
    public Task RunAsync(Func<Action<TopSnapshot?, string?>, Task> loop) =>
        _console.Live(new Markup("[grey]loading...[/]"))
            .AutoClear(false)
            .Overflow(VerticalOverflow.Ellipsis)
            .Cropping(VerticalOverflowCropping.Bottom)
            .StartAsync(context => loop((snapshot, problem) =>
            {
                context.UpdateTarget(Render(snapshot, problem));
                context.Refresh();
            }));

    private IRenderable Render(TopSnapshot? snapshot, string? problem)
    {
        var parts = new List<IRenderable>();
        var when = (snapshot?.Taken ?? DateTimeOffset.UtcNow).ToLocalTime().ToString("HH:mm:ss", CultureInfo.InvariantCulture);
        parts.Add(new Markup($"[bold]cpctl top[/] {Markup.Escape(_address)}  {when}  [grey]Ctrl+C to quit[/]"));
        if (problem is not null)
        {
            parts.Add(new Markup($"[red]{Markup.Escape(problem)}[/]"));
        }

        if (snapshot is null)
        {
            return new Rows(parts);
        }

        var queues = Table("Queues", "QUEUE", "READY", "RUNNING", "AGENTS", "P50", "P95");
        foreach (var queue in snapshot.Queues)
        {
            queues.AddRow(E(queue.Queue), N(queue.Ready), N(queue.Running), N(queue.Agents), E(TopSnapshot.Latency(queue.DispatchLatencyP50)), E(TopSnapshot.Latency(queue.DispatchLatencyP95)));
        }

        parts.Add(Or("Queues", queues, snapshot.Queues.Count, "no queues"));

        if (snapshot.Caps.Count > 0)
        {
            var caps = Table("Caps in use", "KIND", "NAME", "USED", "LIMIT");
            foreach (var cap in snapshot.Caps)
            {
                var full = cap.Limit > 0 && cap.Used >= cap.Limit;
                caps.AddRow(E(cap.Kind), E(cap.Name), full ? $"[yellow]{cap.Used}[/]" : N(cap.Used), cap.Limit == 0 ? "-" : N(cap.Limit));
            }

            if (snapshot.MoreCaps > 0)
            {
                caps.Caption($"and {snapshot.MoreCaps} more");
            }

            parts.Add(caps);
        }

        var agents = Table("Agents", "AGENT", "STATE", "SLOTS", "QUEUES", "HEARTBEAT", "HOST");
        foreach (var agent in snapshot.Agents)
        {
            var state = TextRender.Name(agent.State);
            var color = agent.State switch
            {
                V1.AgentState.Connected => "green",
                V1.AgentState.Draining => "yellow",
                _ => "grey",
            };
            agents.AddRow(E(agent.AgentId), $"[{color}]{E(state)}[/]", $"{agent.UsedSlots}/{agent.Slots}", E(PlainTopView.Queues(agent)), E(snapshot.Ago(agent.LastHeartbeatAt)), E(agent.Host.Length == 0 ? "-" : agent.Host));
        }

        parts.Add(Or("Agents", agents, snapshot.Agents.Count, "no agents"));

        var steps = Table("Running steps", "RUN", "STEP", "STATE", "ATTEMPT", "AGENT", "PROGRESS", "AGE", "MESSAGE");
        foreach (var item in snapshot.Steps)
        {
            var step = item.Step;
            var run = item.RunName.Length > 0 ? $"{item.RunId} [grey]({E(item.RunName)})[/]" : E(item.RunId);
            steps.AddRow(run, E(step.Id), E(TextRender.Name(step.State)), N(step.Attempt), E(step.AgentId.Length == 0 ? "-" : step.AgentId), Bar(step.Progress), E(snapshot.Ago(item.Since)), E(step.ProgressMessage.ReplaceLineEndings(" ")));
        }

        if (snapshot.MoreRunsText() is { } more)
        {
            steps.Caption(Markup.Escape(more));
        }

        parts.Add(Or("Running steps", steps, snapshot.Steps.Count, "none"));
        return new Rows(parts);
    }

    private static Table Table(string title, params string[] headers)
    {
        var table = new Table().Border(TableBorder.Simple).Title($"[bold]{title}[/]");
        foreach (var header in headers)
        {
            table.AddColumn(new TableColumn(header) { NoWrap = header is not "MESSAGE" });
        }

        return table;
    }

    /// <summary>The table, or one line saying it is empty (an empty table's borders take room and say nothing).</summary>
    private static IRenderable Or(string title, Table table, int rows, string empty) =>
        rows > 0 ? table : new Markup($"[bold]{title}:[/] [grey]{empty}[/]");

    /// <summary>A 10-cell bar and the percentage: ███████░░░ 70%.</summary>
    private static string Bar(double percent)
    {
        var value = Math.Clamp(percent, 0, 100);
        var filled = (int)Math.Round(value / 10, MidpointRounding.AwayFromZero);
        return $"[green]{new string('█', filled)}[/][grey]{new string('░', 10 - filled)}[/] {TextRender.Number(value)}%";
    }

    private static string E(string text) => Markup.Escape(text);

    private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);
}
