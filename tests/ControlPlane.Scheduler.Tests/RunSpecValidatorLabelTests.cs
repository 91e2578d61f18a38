using ControlPlane.Scheduler.Internal;
using Xunit;
using static ControlPlane.Scheduler.Tests.Specs;

namespace ControlPlane.Scheduler.Tests;

/// <summary>Labels are bounded: each pair is also an index entry in the store.</summary>
public sealed class RunSpecValidatorLabelTests
{
    [Fact]
    public void Validate_CommonLabels_Accepted()
    {
        var spec = Run(Shell("a")).With(r =>
        {
            r.Labels["team"] = "vision";
            r.Labels["app.kubernetes.io/name"] = "resize images — nightly 😀";
            r.Labels["empty"] = "";
        });

        Assert.Empty(RunSpecValidator.Validate(spec));
    }

    [Fact]
    public void Validate_TooManyLabels_OneViolationWithTheLimit()
    {
        var spec = Run(Shell("a")).With(r =>
        {
            for (var i = 0; i < RunSpecValidator.MaxLabels + 1; i++)
            {
                r.Labels[$"k{i}"] = "v";
            }
        });

        var violation = Assert.Single(RunSpecValidator.Validate(spec));
        Assert.Equal("labels", violation.Field);
        Assert.Contains("at most 64", violation.Description, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "key ''")]
    [InlineData("-team", "starting with a letter or digit")]
    [InlineData("team name", "letters, digits")]
    [InlineData("team=x", "letters, digits")]
    public void Validate_BadLabelKey_NamesTheKeyAndTheRule(string key, string expected)
    {
        var violation = Assert.Single(RunSpecValidator.Validate(Run(Shell("a")).With(r => r.Labels[key] = "v")));

        Assert.Equal($"labels[{key}]", violation.Field);
        Assert.Contains(expected, violation.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_LongKey_FieldPathStaysShort()
    {
        var key = new string('k', 10_000);

        var violation = Assert.Single(RunSpecValidator.Validate(Run(Shell("a")).With(r => r.Labels[key] = "v")));

        Assert.True(violation.Field.Length < 80);
        Assert.True(violation.Description.Length < 300);
    }

    [Theory]
    [InlineData(257, "a", "at most 256")]
    [InlineData(1, "line\nbreak", "control character")]
    public void Validate_BadLabelValue_SaysWhy(int repeat, string text, string expected)
    {
        var value = string.Concat(Enumerable.Repeat(text, repeat));

        var violation = Assert.Single(RunSpecValidator.Validate(Run(Shell("a")).With(r => r.Labels["team"] = value)));

        Assert.Equal("labels[team]", violation.Field);
        Assert.Contains(expected, violation.Description, StringComparison.Ordinal);
    }
}
