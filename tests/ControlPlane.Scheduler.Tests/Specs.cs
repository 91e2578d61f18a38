using ControlPlane.V1;

namespace ControlPlane.Scheduler.Tests;

/// <summary>Short builders for the run specs the tests submit.</summary>
public static class Specs
{
    public static StepSpec Shell(string id, params string[] needs) =>
        new() { Id = id, Framework = "shell", Command = "true", Needs = { needs } };

    public static StepSpec Gate(string id, params string[] needs) =>
        new() { Id = id, Kind = StepKind.Gate, Needs = { needs } };

    public static RunSpec Run(params StepSpec[] steps) => Named("test-run", steps);

    public static RunSpec Named(string name, params StepSpec[] steps) => new() { Name = name, Steps = { steps } };

    public static StepSpec With(this StepSpec step, Action<StepSpec> change)
    {
        change(step);
        return step;
    }

    public static RunSpec With(this RunSpec spec, Action<RunSpec> change)
    {
        change(spec);
        return spec;
    }
}
