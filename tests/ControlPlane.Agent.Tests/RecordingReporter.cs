using ControlPlane.V1;

namespace ControlPlane.Agent.Tests;

/// <summary>Records what a framework reports and lets a test await a log line.</summary>
public sealed class RecordingReporter : IStepReporter
{
    private readonly object _gate = new();
    private readonly List<(string Prefix, TaskCompletionSource<string> Seen)> _waiters = [];

    public List<(double Percent, string? Message)> Progress { get; } = [];

    public List<byte[]> Checkpoints { get; } = [];

    public List<(LogStream Stream, string Line)> Logs { get; } = [];

    public void ReportProgress(double percent, string? message)
    {
        lock (_gate)
        {
            Progress.Add((percent, message));
        }
    }

    public void ReportCheckpoint(ReadOnlyMemory<byte> data)
    {
        lock (_gate)
        {
            Checkpoints.Add(data.ToArray());
        }
    }

    public void ReportLog(LogStream stream, string line)
    {
        lock (_gate)
        {
            Logs.Add((stream, line));
            foreach (var waiter in _waiters.Where(w => line.StartsWith(w.Prefix, StringComparison.Ordinal)))
            {
                waiter.Seen.TrySetResult(line);
            }
        }
    }

    /// <summary>Completes with the first log line starting with the prefix (already seen or later).</summary>
    public Task<string> WaitForLogAsync(string prefix)
    {
        lock (_gate)
        {
            var seen = Logs.FirstOrDefault(l => l.Line.StartsWith(prefix, StringComparison.Ordinal));
            if (seen.Line is not null)
            {
                return Task.FromResult(seen.Line);
            }

            var tcs = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((prefix, tcs));
            return tcs.Task;
        }
    }
}
