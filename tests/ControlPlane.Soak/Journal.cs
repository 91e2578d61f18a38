using System.Globalization;

namespace ControlPlane.Soak;

/// <summary>A fault the soak injected: when, what, on which process, and what it did.</summary>
internal sealed record FaultRecord(DateTime At, string Kind, string Target, string Detail)
{
    public override string ToString() => $"{At.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} {Kind} {Target} ({Detail})";
}

/// <summary>A broken invariant, with the run and step it concerns (empty when it concerns none) and what was seen.</summary>
internal sealed record Violation(string Invariant, string RunId, string StepId, string Detail);

/// <summary>The driver's own log (soak.log in the soak's directory) and its record of faults and violations.</summary>
internal sealed class Journal : IDisposable
{
    private readonly object _gate = new();
    private readonly LogFile _log;
    private readonly List<FaultRecord> _faults = [];
    private readonly List<Violation> _violations = [];

    public Journal(string path) => _log = new LogFile(path);

    public string Path => _log.Path;

    public IReadOnlyList<FaultRecord> Faults
    {
        get
        {
            lock (_gate)
            {
                return _faults.ToList();
            }
        }
    }

    public IReadOnlyList<Violation> Violations
    {
        get
        {
            lock (_gate)
            {
                return _violations.ToList();
            }
        }
    }

    public void Info(string line) => _log.WriteLine(line);

    /// <summary>Records a fault once it has been injected.</summary>
    public void Fault(string kind, string target, string detail)
    {
        var record = new FaultRecord(DateTime.UtcNow, kind, target, detail);
        lock (_gate)
        {
            _faults.Add(record);
        }

        _log.WriteLine($"FAULT {kind} {target}: {detail}");
    }

    public void Violate(string invariant, string runId, string stepId, string detail)
    {
        lock (_gate)
        {
            _violations.Add(new Violation(invariant, runId, stepId, detail));
        }

        _log.WriteLine($"VIOLATION [{invariant}] run {(runId.Length > 0 ? runId : "-")} step {(stepId.Length > 0 ? stepId : "-")}: {detail}");
    }

    /// <summary>The faults injected between two moments, for the diagnosis of what happened to a run in that time.</summary>
    public IReadOnlyList<FaultRecord> FaultsBetween(DateTime from, DateTime to)
    {
        lock (_gate)
        {
            return _faults.Where(f => f.At >= from && f.At <= to).ToList();
        }
    }

    public void Dispose() => _log.Dispose();
}
