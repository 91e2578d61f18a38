using System.Text.Json;
using ControlPlane.V1;

namespace ControlPlane.Agent.Internal;

/// <summary>The context a .NET handler runs with; reports go straight to the attempt's reporter.</summary>
internal sealed class StepContext(StepExecution execution, IStepReporter reporter, CancellationToken cancellationToken) : IStepContext
{
    private readonly Dictionary<string, double> _usage = new(StringComparer.Ordinal);

    public string RunId => execution.RunId;

    public string StepId => execution.StepId;

    public int Attempt => execution.Attempt;

    public IReadOnlyDictionary<string, StepInputData> Inputs => execution.Inputs;

    public string ParamsJson { get; } = execution.ParamsJson;

    public ReadOnlyMemory<byte>? LastCheckpoint => execution.Checkpoint;

    public IReadOnlyDictionary<string, string> Secrets => execution.Secrets;

    public CancellationToken CancellationToken => cancellationToken;

    public IReadOnlyDictionary<string, double> Usage
    {
        get
        {
            lock (_usage)
            {
                return new Dictionary<string, double>(_usage, StringComparer.Ordinal);
            }
        }
    }

    public T GetParams<T>()
    {
        try
        {
            return JsonSerializer.Deserialize<T>(ParamsJson, JsonSerializerOptions.Web)
                ?? throw new InvalidOperationException($"step '{StepId}' params are null; expected a {typeof(T).Name}");
        }
        catch (JsonException ex)
        {
            throw new InvalidOperationException($"step '{StepId}' params do not fit {typeof(T).Name}: {ex.Message}", ex);
        }
    }

    public void ReportProgress(double percent, string? message = null) =>
        reporter.ReportProgress(double.IsNaN(percent) ? 0 : Math.Clamp(percent, 0, 100), message);

    public Task CheckpointAsync(ReadOnlyMemory<byte> data)
    {
        if (data.Length > ShellFramework.MaxInlineBytes)
        {
            throw new ArgumentException($"checkpoint is {data.Length} bytes; at most {ShellFramework.MaxInlineBytes} are allowed", nameof(data));
        }

        reporter.ReportCheckpoint(data.ToArray());
        return Task.CompletedTask;
    }

    public void ReportUsage(string unit, double amount)
    {
        ArgumentException.ThrowIfNullOrEmpty(unit);
        lock (_usage)
        {
            _usage[unit] = _usage.GetValueOrDefault(unit) + amount;
        }
    }

    public void Log(string line) => reporter.ReportLog(LogStream.Stdout, line);
}
