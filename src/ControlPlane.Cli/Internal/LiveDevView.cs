using ControlPlane.V1;
using Spectre.Console;

namespace ControlPlane.Cli.Internal;

/// <summary>
/// Dev output on a terminal: a progress bar per step, with log lines and state changes printed above the bars as they
/// arrive, then the summary as a table.
/// </summary>
internal sealed class LiveDevView : IDevView
{
    private readonly IAnsiConsole _console;
    private readonly string _address;

    public LiveDevView(TextWriter output, string address)
    {
        _console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
        _address = address;
    }

    public async Task FollowAsync(string runId, RunSpec spec, IAsyncEnumerable<RunEvent> events)
    {
        await _console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new SpinnerColumn())
            .StartAsync(async context =>
            {
                var bars = spec.Steps.ToDictionary(s => s.Id, s => context.AddTask(Describe(s.Id, "blocked"), maxValue: 100), StringComparer.Ordinal);
                await foreach (var runEvent in events.ConfigureAwait(false))
                {
                    Render(runId, runEvent, bars);
                }
            }).ConfigureAwait(false);
    }

    public void Note(string line) => _console.MarkupLine($"[yellow]dev:[/] {Markup.Escape(line)}");

    public void Summary(Run run)
    {
        var color = run.State switch
        {
            RunState.Succeeded => "green",
            RunState.Failed => "red",
            _ => "yellow",
        };
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"run {Markup.Escape(run.Id)} ({Markup.Escape(run.Name)}) [{color}]{TextRender.Name(run.State)}[/] in {DevSummary.Duration(run.StartedAt ?? run.CreatedAt, run.FinishedAt)}");
        foreach (var header in DevSummary.Headers)
        {
            table.AddColumn(header);
        }

        foreach (var row in DevSummary.Rows(run))
        {
            var cells = row.Select(Markup.Escape).ToArray();
            cells[1] = $"[{StateColor(row[1])}]{cells[1]}[/]";
            table.AddRow(cells);
        }

        _console.WriteLine();
        _console.Write(table);
        if (run.Error.Length > 0)
        {
            _console.MarkupLine($"[red]{Markup.Escape(run.Error)}[/]");
        }
    }

    private static string Describe(string stepId, string text) => Markup.Escape($"{stepId} {text}");

    private static string StateColor(string state) => state switch
    {
        "SUCCEEDED" => "green",
        "FAILED" => "red",
        "SKIPPED" or "CANCELLED" => "grey",
        _ => "yellow",
    };

    private void Render(string runId, RunEvent runEvent, Dictionary<string, ProgressTask> bars)
    {
        switch (runEvent.EventCase)
        {
            case RunEvent.EventOneofCase.StepStateChanged when bars.TryGetValue(runEvent.StepStateChanged.StepId, out var bar):
                var change = runEvent.StepStateChanged;
                var state = TextRender.Name(change.ToState);
                bar.Description = Describe(change.StepId, state.ToLowerInvariant());
                if (change.ToState is StepState.Succeeded)
                {
                    bar.Value = 100;
                }

                if (change.ToState is StepState.Succeeded or StepState.Failed or StepState.Cancelled or StepState.Skipped)
                {
                    bar.StopTask();
                }
                else if (change.ToState is StepState.Running or StepState.RetryWait)
                {
                    bar.StartTask();
                }

                if (change.ToState is StepState.Failed or StepState.RetryWait or StepState.Skipped or StepState.Cancelled)
                {
                    var reason = change.Reason.Length > 0 ? ": " + change.Reason : string.Empty;
                    _console.MarkupLine($"[{StateColor(state)}]{Markup.Escape($"{change.StepId} {state}{reason}")}[/]");
                }

                if (GateHint(runId, runEvent) is { } hint)
                {
                    bar.Description = Describe(change.StepId, "waiting for approval");
                    _console.MarkupLine($"[yellow]dev:[/] {Markup.Escape(hint)}");
                }

                break;
            case RunEvent.EventOneofCase.StepProgressed when bars.TryGetValue(runEvent.StepProgressed.StepId, out var bar):
                var progress = runEvent.StepProgressed;
                bar.Value = Math.Clamp(progress.Percent, 0, 100);
                if (progress.Message.Length > 0)
                {
                    bar.Description = Describe(progress.StepId, progress.Message);
                }

                break;
            case RunEvent.EventOneofCase.StepLogged:
                var log = runEvent.StepLogged;
                var color = log.Stream == LogStream.Stderr ? "red" : "grey";
                foreach (var line in log.Lines)
                {
                    _console.MarkupLine($"[{color}]{Markup.Escape(log.StepId)} |[/] {Markup.Escape(line)}");
                }

                break;
            case RunEvent.EventOneofCase.GateDecided:
                var gate = runEvent.GateDecided;
                _console.MarkupLine(Markup.Escape($"gate {gate.StepId} {(gate.Approved ? "approved" : "rejected")}{(gate.DecidedBy.Length > 0 ? " by " + gate.DecidedBy : string.Empty)}"));
                break;
        }
    }

    private string? GateHint(string runId, RunEvent runEvent) =>
        DevSession.GateWaiting(runEvent) is { } step ? DevSession.GateHint(runId, step, _address) : null;
}
