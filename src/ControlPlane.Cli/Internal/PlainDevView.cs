using ControlPlane.V1;

namespace ControlPlane.Cli.Internal;

/// <summary>Dev output without a terminal (CI, pipes): one line per event, then the summary as a plain table.</summary>
internal sealed class PlainDevView : IDevView
{
    private readonly TextWriter _output;
    private readonly string _address;
    private readonly Lock _gate = new();

    public PlainDevView(TextWriter output, string address)
    {
        _output = output;
        _address = address;
    }

    public async Task FollowAsync(string runId, RunSpec spec, IAsyncEnumerable<RunEvent> events)
    {
        await foreach (var runEvent in events.ConfigureAwait(false))
        {
            lock (_gate)
            {
                TextRender.Event(_output, runEvent);
                if (DevSession.GateWaiting(runEvent) is { } step)
                {
                    _output.WriteLine($"dev: {DevSession.GateHint(runId, step, _address)}");
                }
            }
        }
    }

    public void Note(string line)
    {
        lock (_gate)
        {
            _output.WriteLine("dev: " + line);
        }
    }

    public void Summary(Run run)
    {
        lock (_gate)
        {
            _output.WriteLine();
            _output.WriteLine($"Run       {run.Id}");
            _output.WriteLine($"Name      {(run.Name.Length == 0 ? "-" : run.Name)}");
            _output.WriteLine($"State     {TextRender.Name(run.State)}");
            if (run.Error.Length > 0)
            {
                _output.WriteLine($"Error     {run.Error}");
            }

            _output.WriteLine($"Duration  {DevSummary.Duration(run.StartedAt ?? run.CreatedAt, run.FinishedAt)}");
            _output.WriteLine();
            var table = new TextTable(DevSummary.Headers);
            foreach (var row in DevSummary.Rows(run))
            {
                table.Add(row);
            }

            table.Write(_output);
        }
    }
}
