using ControlPlane.Internal;
using ControlPlane.Scheduler.Internal;
using ControlPlane.Scheduler.Services;
using ControlPlane.V1;
using CsCheck;
using Google.Protobuf.WellKnownTypes;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

/// <summary>Random and extreme RunSpecs against the validator: it answers every one with violations, in bounded work and size.</summary>
public sealed class RunSpecValidatorPropertyTests
{
    // Edit-distance work one validation may do for suggestions, with a little slack for the call that crosses the budget.
    private const long SuggestionWork = 2_100_000;

    private static readonly string[] OddText =
    [
        "", " ", "A", "é", "e\u0301", "\u202Eevil", "\0", "\uD800", "\uDC00x", "😀", "a😀", "a\nb", "-a", "a..b", "ß", "İ", "ǅ",
        new string('a', 63), new string('a', 64), "s1 ", "S1", "s١",
    ];

    private static readonly string[] MediaTypes =
    [
        "", "text/plain", "text/*", "*/*", "application/json", "text/plain; charset=utf-8", "plain", "/", "text/", "😀/😀",
        "text/" + new string('x', 300), "TEXT/PLAIN",
    ];

    // Ids: mostly from a small pool, so needs hit, collide and form cycles; also odd unicode, arbitrary UTF-16 and long text.
    private static readonly Gen<string> Id = Gen.Frequency(
        (8, Gen.Int[0, 40].Select(i => $"s{i}")),
        (2, Gen.OneOf(OddText)),
        (1, Gen.Char.Array[0, 80].Select(chars => new string(chars))),
        (1, Gen.Int[60, 2000].Select(n => new string('z', n))));

    private static readonly Gen<double> Amount = Gen.Frequency(
        (4, Gen.Double[0, 1e6]),
        (1, Gen.OneOf(double.NaN, double.PositiveInfinity, double.NegativeInfinity, -1.0, double.MaxValue, double.Epsilon)));

    private static readonly Gen<RetryPolicy?> Retry = Gen.Frequency(
        (3, Gen.Const((RetryPolicy?)null)),
        (1, Gen.Select(Gen.Int[-5, 200], Gen.Long[-5, 100_000], Gen.Long[-5, 100_000], Amount, (attempts, backoff, max, multiplier) => (RetryPolicy?)new RetryPolicy
        {
            MaxAttempts = attempts,
            Backoff = new Duration { Seconds = backoff },
            MaxBackoff = new Duration { Seconds = max },
            BackoffMultiplier = multiplier,
        })));

    private static readonly Gen<StepSpec> Step = Gen.Select(
        Id,
        Id.Array[0, 6],
        Gen.OneOf("shell", "dotnet", "", "cobol", "SHELL"),
        Gen.Int[-1, 3],
        Gen.Int[-1, 4],
        Gen.OneOf(MediaTypes),
        Gen.OneOf(MediaTypes),
        Gen.Select(Gen.Int[-3, 5], Retry, Gen.OneOf("cpu_seconds", "usd", "", "TOKENS").Dictionary(Amount)[0, 3]),
        (id, needs, framework, kind, runIf, input, output, rest) =>
        {
            var step = new StepSpec
            {
                Id = id,
                Framework = framework,
                Command = framework == "shell" ? "true" : "",
                Handler = framework == "dotnet" ? "h" : "",
                Kind = (StepKind)kind,
                RunIf = (RunIf)runIf,
                InputType = input,
                OutputType = output,
                Slots = rest.Item1,
                Retry = rest.Item2,
            };
            step.Needs.Add(needs);
            step.Estimate.Add(rest.Item3);
            return step;
        });

    // Mostly small runs; now and then thousands of steps, or more than the limit.
    private static readonly Gen<RunSpec> Spec = Gen.Select(
        Gen.Frequency((24, Step.Array[0, 40]), (2, Step.Array[1000, 3000]), (1, Step.Array[RunSpecValidator.MaxSteps - 5, RunSpecValidator.MaxSteps + 5])),
        Gen.OneOf("run", "", "Bad Name", "😀"),
        Gen.OneOf("cpu_seconds", "usd", "", "bad unit").Dictionary(Amount)[0, 3],
        Gen.Int[-2, 10],
        (steps, name, budget, concurrency) =>
        {
            var spec = Named(name, steps);
            spec.Budget.Add(budget);
            spec.Concurrency = concurrency;
            return spec;
        });

    // Graphs of valid, unique ids with random needs: cycles of every length, or none.
    private static readonly Gen<RunSpec> Graph = Gen.Int[1, 40].SelectMany(n =>
        Gen.Int[0, n - 1].Array[0, 4].Array[n].Select(needs => Run(Enumerable.Range(0, n)
            .Select(i => Shell($"s{i}", needs[i].Distinct().Where(j => j != i).Select(j => $"s{j}").ToArray()))
            .ToArray())));

    [Fact]
    public void Validate_RandomSpecs_OnlyViolationsInBoundedWorkAndSize()
    {
        Spec.Sample(spec =>
        {
            var before = EditDistance.CellsOnThisThread;
            var violations = RunSpecValidator.Validate(spec);

            Assert.InRange(EditDistance.CellsOnThisThread - before, 0, SuggestionWork);
            RunSpecValidatorTests.AssertBounded(violations);
            try
            {
                RunSpecValidator.ThrowIfInvalid(spec);
                Assert.Empty(violations);
            }
            catch (RunSpecValidationException ex)
            {
                Assert.Equal(violations.Select(v => v.ToString()), ex.Violations.Select(v => v.ToString()));
            }
        }, iter: 200);
    }

    [Fact]
    public void Validate_RandomGraphs_CycleReportedExactlyWhenOneExists()
    {
        Graph.Sample(spec =>
        {
            var violations = RunSpecValidator.Validate(spec);

            if (HasCycle(spec))
            {
                var v = Assert.Single(violations);
                Assert.Contains("the needs form a cycle: ", v.Description, StringComparison.Ordinal);
                AssertIsCycle(spec, v.Description);
            }
            else
            {
                Assert.Empty(violations);
            }
        }, iter: 1000);
    }

    // Kahn's algorithm: the needs have a cycle when some step can never become ready.
    private static bool HasCycle(RunSpec spec)
    {
        var index = spec.Steps.Select((s, i) => (s.Id, i)).ToDictionary(p => p.Id, p => p.i);
        var waiting = spec.Steps.Select(s => s.Needs.Count).ToArray();
        var neededBy = spec.Steps.Select(_ => new List<int>()).ToArray();
        for (var i = 0; i < spec.Steps.Count; i++)
        {
            foreach (var need in spec.Steps[i].Needs)
            {
                neededBy[index[need]].Add(i);
            }
        }

        var ready = new Queue<int>(Enumerable.Range(0, spec.Steps.Count).Where(i => waiting[i] == 0));
        var done = 0;
        while (ready.Count > 0)
        {
            done++;
            foreach (var next in neededBy[ready.Dequeue()])
            {
                if (--waiting[next] == 0)
                {
                    ready.Enqueue(next);
                }
            }
        }

        return done < spec.Steps.Count;
    }

    // "a -> b -> c -> a": each step named needs the next, and the path ends where it starts.
    private static void AssertIsCycle(RunSpec spec, string description)
    {
        var path = description["the needs form a cycle: ".Length..description.IndexOf(" (each step", StringComparison.Ordinal)].Split(" -> ");
        Assert.Equal(path[0], path[^1]);
        var byId = spec.Steps.ToDictionary(s => s.Id);
        for (var k = 0; k + 1 < path.Length; k++)
        {
            // A long cycle is shown with its middle elided as "... (N more)"; the pairs around it are still checked.
            if (!path[k].StartsWith("...", StringComparison.Ordinal) && !path[k + 1].StartsWith("...", StringComparison.Ordinal))
            {
                Assert.Contains(path[k + 1], byId[path[k]].Needs);
            }
        }
    }
}
