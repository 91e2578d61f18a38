using ControlPlane.V1;

namespace ControlPlane.Scheduler.Redis.Bench;

/// <summary>The run shapes the benchmark submits: no-op shell steps, so only the store's work is measured.</summary>
internal static class Specs
{
    public static RunSpec Chain(int length)
    {
        var spec = new RunSpec { Name = "chain" };
        for (var i = 0; i < length; i++)
        {
            var step = new StepSpec { Id = $"s{i}", Framework = "shell", Command = "true" };
            if (i > 0)
            {
                step.Needs.Add($"s{i - 1}");
            }

            spec.Steps.Add(step);
        }

        return spec;
    }

    public static RunSpec FanOut(int width)
    {
        var spec = new RunSpec { Name = "fan-out" };
        spec.Steps.Add(new StepSpec { Id = "root", Framework = "shell", Command = "true" });
        var join = new StepSpec { Id = "join", Framework = "shell", Command = "true" };
        for (var i = 0; i < width; i++)
        {
            spec.Steps.Add(new StepSpec { Id = $"w{i}", Framework = "shell", Command = "true", Needs = { "root" } });
            join.Needs.Add($"w{i}");
        }

        spec.Steps.Add(join);
        return spec;
    }
}
