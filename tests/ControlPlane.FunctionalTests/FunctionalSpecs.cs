using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.FunctionalTests;

/// <summary>Small builders for the run specs the functional tests submit.</summary>
public static class FunctionalSpecs
{
    public static StepSpec Shell(string id, string command, params string[] needs)
    {
        var step = new StepSpec { Id = id, Framework = "shell", Command = command };
        step.Needs.Add(needs);
        return step;
    }

    public static StepSpec Gate(string id, params string[] needs)
    {
        var step = new StepSpec { Id = id, Kind = StepKind.Gate };
        step.Needs.Add(needs);
        return step;
    }

    public static RunSpec Spec(string name, params StepSpec[] steps)
    {
        var spec = new RunSpec { Name = name };
        spec.Steps.Add(steps);
        return spec;
    }

    public static StepSpec WithRetry(this StepSpec step, int maxAttempts, TimeSpan backoff)
    {
        step.Retry = new RetryPolicy { MaxAttempts = maxAttempts, Backoff = Duration.FromTimeSpan(backoff) };
        return step;
    }

    public static StepSpec WithTimeout(this StepSpec step, TimeSpan timeout)
    {
        step.Timeout = Duration.FromTimeSpan(timeout);
        return step;
    }

    /// <summary>A shell command that appends "start ID" and "end ID" around a short piece of work to a shared log.</summary>
    public static string Logged(string log) =>
        $"echo \"start $CP_STEP_ID\" >> '{log}'; sleep 0.3; echo \"end $CP_STEP_ID\" >> '{log}'";

    /// <summary>The most steps between their "start" and "end" lines at once, from a log written by <see cref="Logged"/>.</summary>
    public static int MaxOverlap(string log)
    {
        int running = 0, max = 0;
        foreach (var line in File.ReadLines(log))
        {
            running += line.StartsWith("start ", StringComparison.Ordinal) ? 1 : -1;
            max = Math.Max(max, running);
        }

        return max;
    }
}
