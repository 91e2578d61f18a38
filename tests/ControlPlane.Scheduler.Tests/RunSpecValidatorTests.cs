using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;
using ControlPlane.Internal;
using ControlPlane.Scheduler.Internal;
using ControlPlane.Scheduler.Services;

namespace ControlPlane.Scheduler.Tests;

public sealed class RunSpecValidatorTests
{
    [Fact]
    public void Validate_GoodSpec_NoViolations()
    {
        var spec = Run(
            Shell("list").With(s => s.OutputType = "text/uri-list"),
            new StepSpec { Id = "resize", Framework = "dotnet", Handler = "resize-images", Needs = { "list" }, InputType = "text/*", Estimate = { ["cpu_seconds"] = 120 }, ConcurrencyKey = "gpu" },
            Gate("approve", "resize"),
            Shell("publish", "approve"),
            Shell("notify", "publish").With(s => s.RunIf = RunIf.OnFailure))
            .With(s => { s.Budget["cpu_seconds"] = 3600; s.Concurrency = 8; });

        Assert.Empty(RunSpecValidator.Validate(spec));
        RunSpecValidator.ThrowIfInvalid(spec);
    }

    [Fact]
    public void Validate_ManyProblems_ReportsEveryViolationAtOnce()
    {
        var spec = Named("Bad Name",
            Shell("a"),
            Shell("a"),
            Shell("b", "nope"),
            new StepSpec { Id = "c", Framework = "cobol" })
            .With(s => s.Concurrency = -1);

        var ex = Assert.Throws<RunSpecValidationException>(() => RunSpecValidator.ThrowIfInvalid(spec));

        var fields = ex.Violations.Select(v => v.Field).ToList();
        Assert.Contains("name", fields);
        Assert.Contains("steps[1].id", fields);
        Assert.Contains("steps[2].needs[0]", fields);
        Assert.Contains("steps[3].framework", fields);
        Assert.Contains("concurrency", fields);
        Assert.Contains("steps[1].id", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0L, 0)]
    [InlineData(3600L, 0)]
    [InlineData(315_360_000L, 0)]
    public void Validate_RetentionZeroOrUpToTenYears_Accepted(long seconds, int nanos)
    {
        Assert.Empty(RunSpecValidator.Validate(Run(Shell("a")).With(s => s.Retention = new Duration { Seconds = seconds, Nanos = nanos })));
    }

    [Theory]
    [InlineData(-1L, 0)]
    [InlineData(0L, -5)]
    [InlineData(315_360_001L, 0)]
    [InlineData(315_576_000_000L, 0)]
    public void Validate_RetentionNegativeOrOverTenYears_RefusedWithTheRange(long seconds, int nanos)
    {
        var v = Single(Run(Shell("a")).With(s => s.Retention = new Duration { Seconds = seconds, Nanos = nanos }));

        Assert.Equal("retention", v.Field);
        Assert.Contains("3650 days", v.Description, StringComparison.Ordinal);
        Assert.Contains("0 keeps", v.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_DuplicateId_NamesFirstUse()
    {
        var v = Single(Run(Shell("x"), Shell("y"), Shell("x")));

        Assert.Equal("steps[2].id", v.Field);
        Assert.Contains("steps[0]", v.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_UnknownNeedWithTypo_SuggestsClosestId()
    {
        var v = Single(Run(Shell("resize"), Shell("publish", "resise")));

        Assert.Equal("steps[1].needs[0]", v.Field);
        Assert.Contains("'resise'", v.Description, StringComparison.Ordinal);
        Assert.Contains("did you mean 'resize'", v.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_UnknownNeedFarFromAnyId_ListsKnownIds()
    {
        var v = Single(Run(Shell("alpha"), Shell("beta", "zzzzzzzz")));

        Assert.Contains("known step ids: alpha, beta", v.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_Cycle_NamesTheCycle()
    {
        var v = Single(Run(Shell("a", "c"), Shell("b", "a"), Shell("c", "b"), Shell("d", "a")));

        Assert.Equal("steps[0].needs", v.Field);
        Assert.Contains("a -> c -> b -> a", v.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_TwoCycles_OneNamedTheOthersCounted()
    {
        var v = Single(Run(Shell("a", "b"), Shell("b", "a"), Shell("c", "d"), Shell("d", "c")));

        Assert.Equal("steps[0].needs", v.Field);
        Assert.Contains("cycle: a -> b -> a", v.Description, StringComparison.Ordinal);
        Assert.Contains("2 other steps are on cycles too", v.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_TenThousandStepsNeedingUnknownIds_SuggestionWorkAndListingBounded()
    {
        // Every step needs an id one edit away from its own: each is a plausible typo of some id, none exists.
        var steps = Enumerable.Range(0, RunSpecValidator.MaxSteps).Select(i => Shell($"s{i}", $"s{i}x")).ToArray();
        var before = EditDistance.CellsOnThisThread;

        var violations = RunSpecValidator.Validate(Run(steps));

        var cells = EditDistance.CellsOnThisThread - before;
        Assert.True(cells <= SuggestionWork, $"{cells:N0} edit-distance cells computed for suggestions");
        Assert.InRange(violations.Count, 2, RpcErrors.MaxViolations);
        Assert.Equal("steps[0].needs[0]", violations[0].Field);
        Assert.Contains("did you mean 's0'?", violations[0].Description, StringComparison.Ordinal);
        Assert.Equal("", violations[^1].Field);
        Assert.Contains("more violations", violations[^1].Description, StringComparison.Ordinal);
        AssertBounded(violations);
    }

    [Fact]
    public void Validate_ChainThatTheLastStepNeedsWhole_NamesOneCycle()
    {
        // s0 needs s1, s1 needs s2, ... and the last step needs every other step: thousands of distinct cycles.
        var n = RunSpecValidator.MaxSteps;
        var steps = Enumerable.Range(0, n - 1).Select(i => Shell($"s{i}", $"s{i + 1}")).ToList();
        steps.Add(Shell($"s{n - 1}", Enumerable.Range(0, n - 1).Select(i => $"s{i}").ToArray()));

        var violations = RunSpecValidator.Validate(Run([.. steps]));

        var v = Assert.Single(violations);
        Assert.Equal("steps[0].needs", v.Field);
        Assert.StartsWith("the needs form a cycle: s0 -> s1 -> ", v.Description, StringComparison.Ordinal);
        Assert.Contains("more) -> ", v.Description, StringComparison.Ordinal);
        Assert.Contains($"-> s{n - 1} -> s0 (each step needs the next)", v.Description, StringComparison.Ordinal);
        AssertBounded(violations);
    }

    [Fact]
    public void Validate_OverStepLimitWithUnknownNeeds_RefusedBeforeAnyOtherCheck()
    {
        var steps = Enumerable.Range(0, RunSpecValidator.MaxSteps + 1).Select(i => Shell($"s{i}", $"t{i}")).ToArray();
        var before = EditDistance.CellsOnThisThread;

        var v = Single(Run(steps));

        Assert.Equal("steps", v.Field);
        Assert.Equal(0, EditDistance.CellsOnThisThread - before);
    }

    [Fact]
    public void Validate_MegabyteLongValues_QuotedClippedWithTheirLength()
    {
        var huge = new string('x', 500_000); // six of them stay under the 4 MiB spec limit
        var spec = Named(huge, Shell("a", huge).With(s => { s.Framework = huge; s.Queue = huge; }), Shell(huge))
            .With(s => s.Budget[huge] = -1);

        var violations = RunSpecValidator.Validate(spec);

        Assert.Contains(violations, v => v.Field == "name");
        Assert.Contains(violations, v => v.Field == "steps[0].needs[0]" && v.Description.Contains("(500,000 characters)", StringComparison.Ordinal));
        Assert.Contains(violations, v => v.Field == "steps[0].framework");
        Assert.Contains(violations, v => v.Field == "steps[1].id");
        Assert.Contains(violations, v => v.Field.StartsWith("budget[", StringComparison.Ordinal));
        AssertBounded(violations);
    }

    [Fact]
    public void Validate_MediaTypeLongerThan255_Reported()
    {
        var type = "text/" + new string('x', 300);
        var spec = Run(Shell("up").With(s => s.OutputType = type), Shell("down", "up").With(s => s.InputType = type));

        var fields = RunSpecValidator.Validate(spec).Select(v => v.Field).Order();

        Assert.Equal(new[] { "steps[0].output_type", "steps[1].input_type" }, fields);
    }

    [Fact]
    public void Validate_SelfNeed_Reported()
    {
        var v = Single(Run(Shell("a", "a")));

        Assert.Equal("steps[0].needs[0]", v.Field);
        Assert.Contains("needs itself", v.Description, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("UPPER")]
    [InlineData("-leading-dash")]
    [InlineData("has space")]
    [InlineData("")]
    public void Validate_BadStepId_Reported(string id)
    {
        var v = Single(Run(Shell(id)));

        Assert.Equal("steps[0].id", v.Field);
    }

    [Fact]
    public void Validate_NameTooLong_Reported()
    {
        var v = Single(Named(new string('a', 64), Shell("a")));

        Assert.Equal("name", v.Field);
    }

    [Fact]
    public void Validate_BadQueueAndConcurrencyKey_Reported()
    {
        var violations = RunSpecValidator.Validate(Run(Shell("a").With(s => { s.Queue = "Q!"; s.ConcurrencyKey = "GPU"; })).With(s => s.Queue = "Bad"));

        Assert.Equal(new[] { "queue", "steps[0].concurrency_key", "steps[0].queue" }, violations.Select(v => v.Field).Order());
    }

    [Theory]
    [InlineData("text/plain", "application/json", false)]
    [InlineData("text/*", "text/csv", true)]
    [InlineData("*/*", "image/png", true)]
    [InlineData("text/plain", "text/*", true)]
    [InlineData("text/plain", "text/plain; charset=utf-8", true)]
    public void Validate_EdgeTypes_MismatchReportedWildcardsAllowed(string input, string output, bool ok)
    {
        var spec = Run(Shell("up").With(s => s.OutputType = output), Shell("down", "up").With(s => s.InputType = input));

        var violations = RunSpecValidator.Validate(spec);

        if (ok)
        {
            Assert.Empty(violations);
        }
        else
        {
            var v = Assert.Single(violations);
            Assert.Equal("steps[1].needs[0]", v.Field);
            Assert.Contains("'text/plain'", v.Description, StringComparison.Ordinal);
            Assert.Contains("'application/json'", v.Description, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Validate_MalformedMediaType_Reported()
    {
        Assert.Equal("steps[0].output_type", Single(Run(Shell("a").With(s => s.OutputType = "plain"))).Field);
    }

    [Fact]
    public void Validate_GateWithFrameworkCommandHandler_EachReported()
    {
        var gate = Gate("g").With(s => { s.Framework = "shell"; s.Command = "x"; s.Handler = "h"; });

        var fields = RunSpecValidator.Validate(Run(gate)).Select(v => v.Field).Order();

        Assert.Equal(new[] { "steps[0].command", "steps[0].framework", "steps[0].handler" }, fields);
    }

    [Fact]
    public void Validate_TaskFrameworkRules_Reported()
    {
        var violations = RunSpecValidator.Validate(Run(
            new StepSpec { Id = "none" },
            new StepSpec { Id = "unknown", Framework = "java" },
            new StepSpec { Id = "shell-no-command", Framework = "shell" },
            new StepSpec { Id = "dotnet-no-handler", Framework = "dotnet" }));

        Assert.Equal(
            new[] { "steps[0].framework", "steps[1].framework", "steps[2].command", "steps[3].handler" },
            violations.Select(v => v.Field));
        Assert.Contains("dotnet, shell", violations[1].Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_TooManySteps_Reported()
    {
        var steps = Enumerable.Range(0, RunSpecValidator.MaxSteps + 1).Select(i => Shell($"s{i}")).ToArray();

        var v = Single(Run(steps));

        Assert.Equal("steps", v.Field);
        Assert.Contains("10,000", v.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ParamsOverOneMiB_Reported()
    {
        var parameters = new Struct { Fields = { ["blob"] = Value.ForString(new string('x', RunSpecValidator.MaxParamsBytes)) } };

        var v = Single(Run(Shell("a").With(s => s.Params = parameters)));

        Assert.Equal("steps[0].params", v.Field);
    }

    [Fact]
    public void Validate_SpecOverFourMiB_Reported()
    {
        var steps = Enumerable.Range(0, 5).Select(i => Shell($"s{i}").With(s => s.Command = new string('x', 900_000))).ToArray();

        var v = Single(Run(steps));

        Assert.Equal("", v.Field);
        Assert.Contains("4,194,304", v.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_RetryBounds_Reported()
    {
        var retry = new RetryPolicy
        {
            MaxAttempts = 101,
            Backoff = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)),
            MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromMinutes(1)),
            BackoffMultiplier = 0.5,
        };

        var fields = RunSpecValidator.Validate(Run(Shell("a").With(s => s.Retry = retry))).Select(v => v.Field).Order();

        Assert.Equal(new[] { "steps[0].retry.backoff_multiplier", "steps[0].retry.max_attempts", "steps[0].retry.max_backoff" }, fields);
    }

    [Fact]
    public void Validate_NegativeTimeoutSlotsAndConcurrency_Reported()
    {
        var spec = Run(Shell("a").With(s => { s.Timeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(-1)); s.Slots = -2; })).With(s => s.Concurrency = -3);

        var fields = RunSpecValidator.Validate(spec).Select(v => v.Field).Order();

        Assert.Equal(new[] { "concurrency", "steps[0].slots", "steps[0].timeout" }, fields);
    }

    [Theory]
    [InlineData(RunIf.OnFailure)]
    [InlineData(RunIf.Always)]
    public void Validate_RunIfWithoutNeeds_Reported(RunIf runIf)
    {
        Assert.Equal("steps[0].run_if", Single(Run(Shell("a").With(s => s.RunIf = runIf))).Field);
    }

    [Fact]
    public void Validate_EstimateUnitNotInBudget_Reported()
    {
        var spec = Run(Shell("a").With(s => { s.Estimate["tokens"] = 5; s.Estimate["cpu_seconds"] = 1; })).With(s => s.Budget["cpu_seconds"] = 10);

        var v = Single(spec);

        Assert.Equal("steps[0].estimate[tokens]", v.Field);
        Assert.Contains("cpu_seconds", v.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_EstimateWithoutBudget_Allowed()
    {
        Assert.Empty(RunSpecValidator.Validate(Run(Shell("a").With(s => s.Estimate["tokens"] = 5))));
    }

    [Fact]
    public void Validate_NegativeBudgetAndEstimate_Reported()
    {
        var spec = Run(Shell("a").With(s => s.Estimate["usd"] = -1)).With(s => s.Budget["usd"] = -5);

        var fields = RunSpecValidator.Validate(spec).Select(v => v.Field).Order();

        Assert.Equal(new[] { "budget[usd]", "steps[0].estimate[usd]" }, fields);
    }

    [Fact]
    public void Validate_NoSteps_Reported()
    {
        Assert.Equal("steps", Single(Run()).Field);
    }

    // The did-you-mean budget: a few milliseconds of edit-distance work, whatever the spec.
    private const long SuggestionWork = 2_100_000;

    /// <summary>A status can carry the violations whole: few entries, each of bounded size, the message bounded too.</summary>
    internal static void AssertBounded(IReadOnlyList<SpecViolation> violations)
    {
        Assert.InRange(violations.Count, 0, RpcErrors.MaxViolations);
        Assert.All(violations, v => Assert.InRange(v.Field.Length, 0, 128));
        Assert.All(violations, v => Assert.InRange(v.Description.Length, 1, 512));
        if (violations.Count > 0)
        {
            Assert.InRange(new RunSpecValidationException(violations).Message.Length, 0, RpcErrors.MaxViolations * (128 + 512 + 4) + 32);
        }
    }

    private static SpecViolation Single(RunSpec spec)
    {
        var violations = RunSpecValidator.Validate(spec);
        return Assert.Single(violations);
    }
}
