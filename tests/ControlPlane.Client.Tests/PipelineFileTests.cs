using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;
using Xunit;

namespace ControlPlane.Client.Tests;

public sealed class PipelineFileTests
{
    // The example of DESIGN.md §8, verbatim.
    private const string DesignExample = """
        name: nightly-images
        labels: { team: vision }
        concurrency: 8                 # run cap: steps of this run running at once
        budget: { cpu_seconds: 3600 }  # reserve/reconcile units
        steps:
          - id: list
            framework: shell
            run: ./list-images.sh > "$CP_OUTPUT_FILE"
            output_type: text/uri-list
          - id: resize
            needs: [list]
            framework: dotnet
            handler: resize-images
            input_type: text/uri-list
            params: { width: 640 }
            retry: { max_attempts: 3, backoff: 2s, max_backoff: 1m }
            timeout: 10m
            concurrency_key: gpu
            estimate: { cpu_seconds: 120 }
          - id: approve
            kind: gate
            needs: [resize]
          - id: publish
            needs: [approve]
            framework: shell
            run: ./publish.sh
          - id: notify-failure
            needs: [publish]
            run_if: on_failure
            framework: shell
            run: ./page-oncall.sh
        """;

    private static PipelineError SingleError(string yaml, string? path = "hello.yaml")
    {
        var ex = Assert.Throws<PipelineFileException>(() => PipelineFile.Parse(yaml, path));
        return Assert.Single(ex.Errors);
    }

    [Fact]
    public void Parse_DesignExample_MapsEveryField()
    {
        var spec = PipelineFile.Parse(DesignExample, "nightly.yaml").Spec;

        Assert.Equal("nightly-images", spec.Name);
        Assert.Equal("vision", spec.Labels["team"]);
        Assert.Equal(8, spec.Concurrency);
        Assert.Equal(3600, spec.Budget["cpu_seconds"]);
        Assert.Equal(["list", "resize", "approve", "publish", "notify-failure"], spec.Steps.Select(s => s.Id));

        var list = spec.Steps[0];
        Assert.Equal("shell", list.Framework);
        Assert.Equal("./list-images.sh > \"$CP_OUTPUT_FILE\"", list.Command);
        Assert.Equal("text/uri-list", list.OutputType);

        var resize = spec.Steps[1];
        Assert.Equal(["list"], resize.Needs);
        Assert.Equal("dotnet", resize.Framework);
        Assert.Equal("resize-images", resize.Handler);
        Assert.Equal("text/uri-list", resize.InputType);
        Assert.Equal(640, resize.Params.Fields["width"].NumberValue);
        Assert.Equal(3, resize.Retry.MaxAttempts);
        Assert.Equal(TimeSpan.FromSeconds(2), resize.Retry.Backoff.ToTimeSpan());
        Assert.Equal(TimeSpan.FromMinutes(1), resize.Retry.MaxBackoff.ToTimeSpan());
        Assert.Equal(TimeSpan.FromMinutes(10), resize.Timeout.ToTimeSpan());
        Assert.Equal("gpu", resize.ConcurrencyKey);
        Assert.Equal(120, resize.Estimate["cpu_seconds"]);

        Assert.Equal(StepKind.Gate, spec.Steps[2].Kind);
        Assert.Equal(["resize"], spec.Steps[2].Needs);
        Assert.Equal("./publish.sh", spec.Steps[3].Command);
        Assert.Equal(RunIf.OnFailure, spec.Steps[4].RunIf);
    }

    [Fact]
    public void Parse_StepSecrets_MapsThemInOrder()
    {
        var spec = PipelineFile.Parse("steps: [{ id: migrate, framework: shell, run: ./migrate.sh, secrets: [db-password, api.key] }]").Spec;

        Assert.Equal(["db-password", "api.key"], spec.Steps[0].Secrets);
    }

    [Fact]
    public void Parse_SecretsNotAList_NamesTheField()
    {
        var ex = Assert.Throws<PipelineFileException>(() => PipelineFile.Parse("steps: [{ id: a, framework: shell, run: 'true', secrets: { a: b } }]"));

        Assert.Contains(ex.Errors, e => e.Field == "steps[0].secrets");
    }

    [Fact]
    public void Parse_RemainingFields_MapsThem()
    {
        var yaml = """
            name: all-fields
            queue: batch
            retention: 72h
            steps:
              - id: train
                kind: task
                framework: dotnet
                handler: train
                queue: gpu
                keep_output: true
                run_if: always
                priority: -5
                slots: 2
                retry:
                  max_attempts: 4
                  backoff: 500ms
                  max_backoff: 1h30m
                  multiplier: 1.5
                params:
                  epochs: 3
                  rate: 0.01
                  name: "007"
                  enabled: false
                  nothing: ~
                  layers: [64, 32, "x"]
                  nested: { a: { b: yes } }
              - id: after
                run_if: on_success
                framework: shell
                run: |
                  echo one
                  echo two
            """;

        var spec = PipelineFile.Parse(yaml).Spec;

        Assert.Equal("batch", spec.Queue);
        Assert.Equal(TimeSpan.FromHours(72), spec.Retention.ToTimeSpan());
        var train = spec.Steps[0];
        Assert.Equal(StepKind.Task, train.Kind);
        Assert.Equal("gpu", train.Queue);
        Assert.True(train.KeepOutput);
        Assert.Equal(RunIf.Always, train.RunIf);
        Assert.Equal(-5, train.Priority);
        Assert.Equal(2, train.Slots);
        Assert.Equal(4, train.Retry.MaxAttempts);
        Assert.Equal(TimeSpan.FromMilliseconds(500), train.Retry.Backoff.ToTimeSpan());
        Assert.Equal(TimeSpan.FromMinutes(90), train.Retry.MaxBackoff.ToTimeSpan());
        Assert.Equal(1.5, train.Retry.BackoffMultiplier);
        var p = train.Params.Fields;
        Assert.Equal(3, p["epochs"].NumberValue);
        Assert.Equal(0.01, p["rate"].NumberValue);
        Assert.Equal("007", p["name"].StringValue);
        Assert.False(p["enabled"].BoolValue);
        Assert.Equal(Value.KindOneofCase.NullValue, p["nothing"].KindCase);
        Assert.Equal([Value.ForNumber(64), Value.ForNumber(32), Value.ForString("x")], p["layers"].ListValue.Values);
        Assert.Equal("yes", p["nested"].StructValue.Fields["a"].StructValue.Fields["b"].StringValue);
        Assert.Equal(RunIf.OnSuccess, spec.Steps[1].RunIf);
        Assert.Equal("echo one\necho two", spec.Steps[1].Command);
    }

    [Theory]
    [InlineData("10m", 600_000)]
    [InlineData("2s", 2_000)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("500ms", 500)]
    [InlineData("1.5s", 1_500)]
    [InlineData("1h0m30s", 3_630_000)]
    [InlineData("0s", 0)]
    public void Parse_Duration_ConvertsToProtobufDuration(string text, long expectedMs)
    {
        var spec = PipelineFile.Parse($"steps: [{{ id: a, framework: shell, run: 'true', timeout: {text} }}]").Spec;

        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), spec.Steps[0].Timeout.ToTimeSpan());
    }

    [Theory]
    [InlineData("10 minutes")]
    [InlineData("10")]
    [InlineData("5x")]
    [InlineData("-1s")]
    [InlineData("m")]
    [InlineData("1.2.3s")]
    public void Parse_BadDuration_NamesLineFieldAndShowsExamples(string text)
    {
        var error = SingleError($"""
            name: hello
            steps:
              - id: a
                framework: shell
                run: echo hi
                timeout: {text}
            """);

        Assert.Equal(
            $"hello.yaml:6:5: steps[0].timeout: '{text}' is not a duration; use e.g. 10m, 30s, 1h, 1h30m or 500ms",
            error.ToString());
    }

    [Fact]
    public void Parse_UnknownStepKey_SuggestsTheKnownOne()
    {
        var error = SingleError("""
            steps:
              - id: a
                framework: shell
                timout: 1m
            """);

        Assert.Equal(new PipelineLocation(4, 5), error.Location);
        Assert.Equal("steps[0].timout", error.Field);
        Assert.StartsWith("unknown key 'timout'; did you mean 'timeout'?", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("nmae: x\nsteps: [{ id: a }]", 1, 1, "nmae")]
    [InlineData("steps:\n  - id: a\n    retry: { max_attempts: 2, jitter: true }", 3, 31, "steps[0].retry.jitter")]
    [InlineData("steps:\n  - id: a\n    command: echo", 3, 5, "steps[0].command")]
    public void Parse_UnknownKey_IsAnErrorAtItsPosition(string yaml, int line, int column, string field)
    {
        var error = SingleError(yaml);

        Assert.Equal(new PipelineLocation(line, column), error.Location);
        Assert.Equal(field, error.Field);
        Assert.Contains("unknown key", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_SeveralProblems_ReportsAllInFileOrder()
    {
        var yaml = """
            name: hello
            concurrency: lots
            steps:
              - id: a
                keep_output: maybe
                kind: job
              - framework: shell
                needs: a
                slots: 0
                run_if: sometimes
            """;

        var ex = Assert.Throws<PipelineFileException>(() => PipelineFile.Parse(yaml, "p.yaml"));

        Assert.Equal(
            [
                "p.yaml:2:1: concurrency: 'lots' is not a whole number",
                "p.yaml:5:5: steps[0].keep_output: 'maybe' is not a boolean; use true or false",
                "p.yaml:6:5: steps[0].kind: 'job' is not one of task, gate",
                "p.yaml:7:5: steps[1].id: missing; every step needs an id such as 'build' ([a-z0-9][a-z0-9._-]*)",
                "p.yaml:8:5: steps[1].needs: expected a list of step ids, e.g. [build, test]",
                "p.yaml:9:5: steps[1].slots: 0 is out of range; use a whole number at least 1",
                "p.yaml:10:5: steps[1].run_if: 'sometimes' is not one of on_success, always, on_failure",
            ],
            ex.Errors.Select(e => e.ToString()));
        Assert.Equal(string.Join(Environment.NewLine, ex.Errors), ex.Message);
    }

    [Fact]
    public void Parse_InvalidYaml_ReportsTheLine()
    {
        var error = SingleError("name: x\nsteps:\n  - id: a\n    run: [unclosed\n");

        Assert.StartsWith("hello.yaml:", error.ToString(), StringComparison.Ordinal);
        Assert.True(error.Location.Line >= 4, $"line {error.Location.Line}");
        Assert.StartsWith("not valid YAML: ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_DuplicateKey_IsAnError()
    {
        var ex = Assert.Throws<PipelineFileException>(() => PipelineFile.Parse("steps:\n  - id: a\n    id: b\n", "d.yaml"));

        var error = Assert.Single(ex.Errors);
        Assert.Equal(3, error.Location.Line);
        Assert.Equal("d.yaml:3:5: key 'id' is given twice in one mapping; keep one", error.ToString());
    }

    [Theory]
    [InlineData("", "the file is empty")]
    [InlineData("# only a comment\n", "the file is empty")]
    [InlineData("- id: a\n", "a pipeline file is a mapping")]
    [InlineData("name: x\n", "steps: missing")]
    [InlineData("steps: []\n", "steps: expected a non-empty list")]
    [InlineData("steps: { id: a }\n", "steps: expected a non-empty list")]
    [InlineData("steps: [a]\n", "steps[0]: expected a step")]
    [InlineData("labels: [a]\nsteps: [{ id: a }]\n", "labels: expected a mapping")]
    [InlineData("budget: { usd: -1 }\nsteps: [{ id: a }]\n", "budget.usd: -1 is negative")]
    [InlineData("budget: { usd: lots }\nsteps: [{ id: a }]\n", "budget.usd: 'lots' is not a number")]
    [InlineData("name: [a]\nsteps: [{ id: a }]\n", "name: expected a single value")]
    [InlineData("steps: [{ id: a, params: [1] }]\n", "steps[0].params: expected a mapping")]
    [InlineData("steps: [{ id: a, retry: { max_attempts: 101 } }]\n", "steps[0].retry.max_attempts: 101 is out of range; use a whole number between 0 and 100")]
    [InlineData("steps: [{ id: a }]\n---\nname: b\n", "one YAML document")]
    public void Parse_StructuralProblem_ExplainsWhatToWrite(string yaml, string expected)
    {
        var error = SingleError(yaml);

        Assert.Contains(expected, error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_NullValues_LeaveFieldsUnset()
    {
        var spec = PipelineFile.Parse("name:\nlabels:\nsteps:\n  - id: a\n    timeout: ~\n    needs:\n").Spec;

        Assert.Equal(string.Empty, spec.Name);
        Assert.Empty(spec.Labels);
        Assert.Null(spec.Steps[0].Timeout);
        Assert.Empty(spec.Steps[0].Needs);
    }

    [Fact]
    public void Locate_FieldPathsAsTheServerReportsThem_PointAtTheirLines()
    {
        var file = PipelineFile.Parse(DesignExample, "nightly.yaml");

        Assert.Equal(new PipelineLocation(1, 1), file.Locate("name"));
        Assert.Equal(7, file.Locate("steps[0].framework")?.Line);
        Assert.Equal(8, file.Locate("steps[0].command")?.Line);
        Assert.Equal(11, file.Locate("steps[1].needs[0]")?.Line);
        Assert.Equal(new PipelineLocation(11, 13), file.Locate("steps[1].needs[0]"));
        Assert.Equal(16, file.Locate("steps[1].retry.backoff")?.Line);
        Assert.Equal(15, file.Locate("steps[1].params.width")?.Line);
        Assert.Equal(2, file.Locate("labels.team")?.Line);
        Assert.Equal(4, file.Locate("budget[cpu_seconds]")?.Line);
        Assert.Equal(22, file.Locate("steps[2].needs[0]")?.Line);
    }

    [Fact]
    public void Locate_PathNotWritten_FallsBackToNearestWrittenParent()
    {
        var file = PipelineFile.Parse(DesignExample, "nightly.yaml");

        Assert.Equal(new PipelineLocation(20, 5), file.Locate("steps[2].framework"));
        Assert.Equal(11, file.Locate("steps[1].needs[7]")?.Line);
        Assert.Equal(5, file.Locate("steps[9].id")?.Line);
        Assert.Null(file.Locate("retention"));
    }

    [Fact]
    public void Locate_RetryMultiplier_AnswersToItsRunSpecName()
    {
        var file = PipelineFile.Parse("steps:\n  - id: a\n    retry:\n      multiplier: 3\n");

        Assert.Equal(4, file.Locate("steps[0].retry.backoff_multiplier")?.Line);
    }

    [Fact]
    public void Describe_ServerViolations_PrintFileLineFieldMessage()
    {
        var file = PipelineFile.Parse(DesignExample, "nightly.yaml");
        FieldViolation[] violations =
        [
            new("steps[1].needs[0]", "unknown step 'lst'"),
            new("steps[3].command", "must not be empty; cycle through a -> b -> a"),
        ];

        var lines = file.Describe(violations);

        Assert.Equal(
            [
                "nightly.yaml:11: steps[1].needs[0]: unknown step 'lst'",
                "nightly.yaml:26: steps[3].command: must not be empty; cycle through a -> b -> a",
            ],
            lines);
    }

    [Fact]
    public void Describe_ViolationWithoutField_PointsAtFirstLine()
    {
        var file = PipelineFile.Parse(DesignExample, "nightly.yaml");

        var lines = file.Describe([new FieldViolation("", "the run has too many steps")]);

        Assert.Equal(["nightly.yaml:1: the run has too many steps"], lines);
    }
}
