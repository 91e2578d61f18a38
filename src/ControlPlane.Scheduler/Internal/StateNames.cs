using ControlPlane.V1;
using Google.Protobuf.Reflection;

namespace ControlPlane.Scheduler.Internal;

/// <summary>The proto enum value names ("STEP_STATE_READY") used in history entries and Lua scripts.</summary>
internal static class StateNames
{
    private static readonly IReadOnlyDictionary<int, string> RunNames = Names("RunState");
    private static readonly IReadOnlyDictionary<int, string> StepNames = Names("StepState");
    private static readonly IReadOnlyDictionary<string, RunState> RunByName = RunNames.ToDictionary(p => p.Value, p => (RunState)p.Key);
    private static readonly IReadOnlyDictionary<string, StepState> StepByName = StepNames.ToDictionary(p => p.Value, p => (StepState)p.Key);

    public static string Of(RunState state) => RunNames.TryGetValue((int)state, out var name) ? name : state.ToString();

    public static string Of(StepState state) => StepNames.TryGetValue((int)state, out var name) ? name : state.ToString();

    public static RunState ParseRunState(string name) =>
        RunByName.TryGetValue(name, out var state) ? state : throw new ArgumentException($"unknown run state '{name}'", nameof(name));

    public static StepState ParseStepState(string name) =>
        StepByName.TryGetValue(name, out var state) ? state : throw new ArgumentException($"unknown step state '{name}'", nameof(name));

    private static Dictionary<int, string> Names(string enumName) =>
        RunReflection.Descriptor.FindTypeByName<EnumDescriptor>(enumName).Values.ToDictionary(v => v.Number, v => v.Name);
}
