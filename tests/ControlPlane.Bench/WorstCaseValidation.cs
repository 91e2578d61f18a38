using System.Diagnostics;
using ControlPlane.Scheduler.Internal;
using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Bench;

/// <summary>
/// The most expensive run specs we know how to build for the validator, each validated several times in process; the
/// figure is each one's median in milliseconds. Every one must stay in milliseconds: SubmitRun validates on the request path.
/// </summary>
internal static class WorstCaseValidation
{
    private const int Repetitions = 9;

    public static SortedDictionary<string, double> Measure()
    {
        var specs = new (string Name, RunSpec Spec)[]
        {
            ("unknown_needs", UnknownNeeds()),
            ("chain_cycle", ChainThatTheLastStepNeedsWhole()),
            ("max_size", MaxSize()),
            ("over_limit", OverLimit()),
        };

        var figures = new SortedDictionary<string, double>(StringComparer.Ordinal);
        var worst = 0.0;
        foreach (var (name, spec) in specs)
        {
            RunSpecValidator.Validate(spec); // JIT and first-touch outside the measurement
            var times = new List<double>();
            for (var i = 0; i < Repetitions; i++)
            {
                var started = Stopwatch.GetTimestamp();
                RunSpecValidator.Validate(spec);
                times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }

            var median = Math.Round(Percentiles.Of(times, 50), 3);
            figures[$"validation_{name}_ms"] = median;
            worst = Math.Max(worst, median);
        }

        figures["worst_validation_ms"] = worst;
        return figures;
    }

    private static StepSpec Noop(string id, params string[] needs) => Specs.Noop(id, needs);

    /// <summary>
    /// 10,000 steps with 63-character ids that are anagrams of one another (no length or letter count tells them apart),
    /// each needing an id one edit away from its own that no step has: every need asks for a suggestion.
    /// </summary>
    private static RunSpec UnknownNeeds()
    {
        var spec = new RunSpec { Name = "unknown-needs" };
        for (var i = 0; i < RunSpecValidator.MaxSteps; i++)
        {
            var id = LongId(i);
            spec.Steps.Add(Noop(id, id[..^1] + (id[^1] == 'a' ? 'b' : 'a')));
        }

        return spec;
    }

    /// <summary>s0 needs s1, s1 needs s2, ..., and the last step needs every other one: a cycle through every pair.</summary>
    private static RunSpec ChainThatTheLastStepNeedsWhole()
    {
        var n = RunSpecValidator.MaxSteps;
        var spec = new RunSpec { Name = "chain-cycle" };
        for (var i = 0; i < n - 1; i++)
        {
            spec.Steps.Add(Noop(LongId(i), LongId(i + 1)));
        }

        spec.Steps.Add(Noop(LongId(n - 1), [.. Enumerable.Range(0, n - 1).Select(LongId)]));
        return spec;
    }

    /// <summary>
    /// Everything at its limit and valid: 10,000 steps with 63-character ids, typed edges with long media types, each step
    /// needing up to 40 earlier ones, params filling the rest of the 4 MiB.
    /// </summary>
    private static RunSpec MaxSize()
    {
        var spec = new RunSpec { Name = "max-size" };
        var type = "application/" + new string('x', 120) + "; charset=utf-8";
        for (var i = 0; i < RunSpecValidator.MaxSteps; i++)
        {
            var step = Noop(LongId(i), [.. Enumerable.Range(Math.Max(0, i - 40), Math.Min(i, 40)).Select(LongId)]);
            step.InputType = type;
            step.OutputType = type;
            spec.Steps.Add(step);
        }

        var room = RunSpecValidator.MaxSpecBytes - spec.CalculateSize() - 64;
        if (room > 0)
        {
            spec.Steps[0].Params = new Struct { Fields = { ["blob"] = Value.ForString(new string('p', Math.Min(room, RunSpecValidator.MaxParamsBytes - 64))) } };
        }

        return spec;
    }

    /// <summary>One step over the limit, each needing an unknown id: refused by the count before anything else runs.</summary>
    private static RunSpec OverLimit()
    {
        var spec = new RunSpec { Name = "over-limit" };
        for (var i = 0; i <= RunSpecValidator.MaxSteps; i++)
        {
            spec.Steps.Add(Noop($"s{i}", $"t{i}"));
        }

        return spec;
    }

    // 63 characters from a fixed multiset of letters, a different arrangement for each i.
    private static string LongId(int i)
    {
        var chars = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk".ToCharArray();
        var rng = new Random(i);
        rng.Shuffle(chars);
        return new string(chars);
    }
}
