using ControlPlane.V1;

namespace ControlPlane.Cli.Internal;

/// <summary>Dev output without a terminal (CI, pipes): one line per event, then the summary as a plain table.</summary>
internal sealed class PlainDevView : IDevView
{
    private readonly TextWriter output;
    private readonly string address;
    private readonly Lock gate = new();

    public PlainDevView(TextWriter output, string address)
    {
        this.output = output;
        this.address = address;
    }

    public async Task FollowAsync(string runId, RunSpec spec, IAsyncEnumerable<RunEvent> events)
    {
        await foreach (var runEvent in events.ConfigureAwait(false))
        {
            lock (gate)
            {
                TextRender.Event(output, runEvent);
                if (DevSession.GateWaiting(runEvent) is { } step)
                {
                    output.WriteLine($"dev: {DevSession.GateHint(runId, step, address)}");
                }
            }
        }
    }

    public void Note(string line)
    {
        lock (gate)
        {
            output.WriteLine("dev: " + line);
        }
    }

    public void Summary(Run run)
    {
        lock (gate)
        {
            output.WriteLine();
            output.WriteLine($"Run       {run.Id}");
            output.WriteLine($"Name      {(run.Name.Length == 0 ? "-" : run.Name)}");
            output.WriteLine($"State     {TextRender.Name(run.State)}");
            if (run.Error.Length > 0)
            {
                output.WriteLine($"Error     {run.Error}");
            }

            output.WriteLine($"Duration  {DevSummary.Duration(run.StartedAt ?? run.CreatedAt, run.FinishedAt)}");
            output.WriteLine();
            var table = new TextTable(DevSummary.Headers);
            foreach (var row in DevSummary.Rows(run))
            {
                table.Add(row);
            }

            table.Write(output);
        }
    }
}
