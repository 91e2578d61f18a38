using ControlPlane.V1;

namespace ControlPlane.Bench;

/// <summary>The run shapes, all made of no-op dotnet steps so only the control plane's own cost is measured.</summary>
internal static class Specs
{
    public static StepSpec Noop(string id, params string[] needs)
    {
        var step = new StepSpec { Id = id, Framework = "dotnet", Handler = "noop" };
        step.Needs.Add(needs);
        return step;
    }

    /// <summary><paramref name="width"/> independent steps (no root, no join), like a batch of queue jobs.</summary>
    public static RunSpec FanOut(string phase, int width)
    {
        var spec = Labeled("fan-out", phase);
        for (var i = 0; i < width; i++)
        {
            spec.Steps.Add(Noop($"w{i}"));
        }

        return spec;
    }

    /// <summary>A parent that needs <paramref name="children"/> children, like a BullMQ flow.</summary>
    public static RunSpec ParentWithChildren(string phase, int children)
    {
        var spec = Labeled("parent-children", phase);
        var ids = new string[children];
        for (var i = 0; i < children; i++)
        {
            ids[i] = $"c{i}";
            spec.Steps.Add(Noop(ids[i]));
        }

        spec.Steps.Add(Noop("parent", ids));
        return spec;
    }

    private static RunSpec Labeled(string name, string phase)
    {
        var spec = new RunSpec { Name = name };
        spec.Labels["bench"] = phase;
        return spec;
    }
}
