using System.Text;
using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Agent.Tests;

/// <summary>Builds step executions for framework tests.</summary>
public static class Steps
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static StepExecution Shell(
        string directory,
        string command,
        Dictionary<string, string>? inputs = null,
        byte[]? checkpoint = null,
        TimeSpan? timeout = null,
        string paramsJson = "{}",
        int attempt = 1) =>
        Execution(directory, new StepSpec { Id = "step-a", Framework = "shell", Command = command }, inputs, checkpoint, timeout, paramsJson, attempt);

    public static StepExecution Dotnet(
        string directory,
        string handler,
        Dictionary<string, string>? inputs = null,
        byte[]? checkpoint = null,
        TimeSpan? timeout = null,
        string paramsJson = "{}") =>
        Execution(directory, new StepSpec { Id = "step-a", Framework = "dotnet", Handler = handler }, inputs, checkpoint, timeout, paramsJson, 1);

    private static StepExecution Execution(string directory, StepSpec spec, Dictionary<string, string>? inputs, byte[]? checkpoint, TimeSpan? timeout, string paramsJson, int attempt)
    {
        spec.Params = Struct.Parser.ParseJson(paramsJson);
        if (timeout is { } t)
        {
            spec.Timeout = Duration.FromTimeSpan(t);
        }

        var inputData = (inputs ?? []).ToDictionary(kv => kv.Key, kv => new StepInputData(kv.Key, Encoding.UTF8.GetBytes(kv.Value)));
        ReadOnlyMemory<byte>? lastCheckpoint = null;
        if (checkpoint is not null)
        {
            lastCheckpoint = checkpoint;
        }

        return new StepExecution("run-1", spec.Id, attempt, 42, spec, inputData, lastCheckpoint, Path.Combine(directory, "attempt"));
    }

    /// <summary>Fails the test when the task does not finish in time, instead of hanging.</summary>
    public static async Task<T> WithTimeout<T>(this Task<T> task)
    {
        var finished = await Task.WhenAny(task, Task.Delay(Timeout));
        Assert.True(finished == task, $"timed out after {Timeout}");
        return await task;
    }

    public static async Task WithTimeout(this Task task)
    {
        var finished = await Task.WhenAny(task, Task.Delay(Timeout));
        Assert.True(finished == task, $"timed out after {Timeout}");
        await task;
    }
}
