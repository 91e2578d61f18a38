using System.Text;
using CsCheck;
using Xunit;

namespace ControlPlane.Client.Tests;

/// <summary>Pipeline files built to exhaust the reader: alias bombs, recursion, deep nesting, huge files, floods of errors.</summary>
public sealed class PipelineFileLimitsTests
{
    // What reading a refused file may allocate: the text and the parser's buffers, never the expanded document.
    private const long RefusalBytes = 64L * 1024 * 1024;

    private const string StepHead = """
        name: bomb
        steps:
          - id: a
            framework: shell
            run: "true"

        """;

    /// <summary>Nine anchors, each a list of nine aliases of the one before: 9^9 (387 million) values once expanded.</summary>
    private static string Laughs(string indent, int levels = 9, int width = 9)
    {
        var text = new StringBuilder();
        text.Append(indent).Append("l0: &l0 [").AppendJoin(", ", Enumerable.Repeat("lol", width)).Append("]\n");
        for (var i = 1; i < levels; i++)
        {
            text.Append(indent).Append($"l{i}: &l{i} [").AppendJoin(", ", Enumerable.Repeat($"*l{i - 1}", width)).Append("]\n");
        }

        return text.ToString();
    }

    private static PipelineError Refused(string yaml)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<PipelineFileException>(() => PipelineFile.Parse(yaml, "bomb.yaml"));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(allocated < RefusalBytes, $"{allocated:N0} bytes allocated to refuse the file");
        return Assert.Single(ex.Errors);
    }

    [Fact]
    public void Parse_AliasBombInParams_RefusedNamingTheLimit()
    {
        var error = Refused(StepHead + "    params:\n" + Laughs("      "));

        Assert.Contains("1,000,000 values", error.Message, StringComparison.Ordinal);
        Assert.Contains("alias", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_FewAliasesOfALongString_RefusedByTheTextTheyExpandTo()
    {
        // 1.2 MB of file whose 20 aliases of one 60,000-character string expand past the 4 MiB a file may hold: few
        // values, so only the text's length can catch it (unchecked, 20,000 such aliases add up to gigabytes).
        var text = new StringBuilder(StepHead + "    params:\n      blob: &b \"" + new string('x', 60_000) + "\"\n");
        for (var i = 0; i < 80; i++)
        {
            text.Append($"      copy{i}: *b\n");
        }

        var error = Refused(text.ToString());

        Assert.Contains("4,194,304 characters of text", error.Message, StringComparison.Ordinal);
        Assert.Contains("*b", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_AliasBombAsMappingKey_Refused()
    {
        // A collection used as a key is hashed whole when the mapping is built, before any field is read.
        var error = Refused(StepHead + "    params:\n" + Laughs("      ") + "labels:\n  ? *l8\n  : x\n");

        Assert.Contains("1,000,000 values", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("    params: &p { self: *p }\n")]
    [InlineData("    params: &p [ [ *p ] ]\n")]
    [InlineData("    params: { a: &p [ *q ], b: &q [ *p ] }\n")]
    public void Parse_RecursiveAlias_Refused(string parameters)
    {
        var error = Refused(StepHead + parameters);

        Assert.Contains("alias *", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(200)]
    [InlineData(100_000)]
    public void Parse_DeepNesting_RefusedNamingTheLimit(int depth)
    {
        var error = Refused(StepHead + "    params: { deep: " + new string('[', depth) + new string(']', depth) + " }\n");

        Assert.Contains("deeper than 32 levels", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_DeepNestingThroughAliases_Refused()
    {
        var text = new StringBuilder("    params:\n      d0: &d0 [x]\n");
        for (var i = 1; i < 40; i++)
        {
            text.Append($"      d{i}: &d{i} [*d{i - 1}]\n");
        }

        var error = Refused(StepHead + text);

        Assert.Contains("deeper than 32 levels", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_FileOverFourMiB_RefusedBeforeParsing()
    {
        var yaml = StepHead + string.Concat(Enumerable.Repeat("# padding padding padding padding padding padding padding padding\n", 70_000));

        var error = Refused(yaml);

        Assert.Contains("at most 4,194,304 characters", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LoadAsync_FileOverFourMiB_RefusedWithoutReadingIt()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cp-big-{Guid.NewGuid():N}.yaml");
        await using (var file = File.Create(path))
        {
            file.SetLength(5L * 1024 * 1024);
        }

        try
        {
            var ex = await Assert.ThrowsAsync<PipelineFileException>(() => PipelineFile.LoadAsync(path));

            var error = Assert.Single(ex.Errors);
            Assert.Equal(path, error.Path);
            Assert.Contains("at most 4,194,304", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Parse_TenThousandStepsWithLongUnknownKeys_ErrorsCappedAndShort()
    {
        var key = new string('k', 300);
        var yaml = new StringBuilder("name: many\nsteps:\n");
        for (var i = 0; i < 10_000; i++)
        {
            yaml.Append($"  - {{ id: s{i}, framework: shell, run: x, {key}: 1 }}\n");
        }

        var ex = Assert.Throws<PipelineFileException>(() => PipelineFile.Parse(yaml.ToString(), "many.yaml"));

        Assert.InRange(ex.Errors.Count, 2, 50);
        Assert.Contains("(300 characters)", ex.Errors[0].Message, StringComparison.Ordinal);
        Assert.Contains("more problems", ex.Errors[^1].Message, StringComparison.Ordinal);
        Assert.All(ex.Errors, e => Assert.InRange(e.Message.Length, 1, 512));
    }

    // Random documents of nested lists and mappings whose values are scalars, anchors and aliases of earlier anchors
    // (or of the node they sit in), placed as a step's params or as a mapping key.
    private static readonly Gen<string> Node = Gen.Recursive<string>((depth, node) => depth >= 6
        ? Gen.OneOf("x", "1", "~", "'q'", "*a0", "*a1", "*a2", "*a3")
        : Gen.Frequency(
            (3, Gen.OneOf("x", "1", "~", "'q'", "*a0", "*a1", "*a2", "*a3")),
            (2, Gen.Select(Gen.Int[0, 5], node.Array[0, 6], (anchor, items) => $"{Anchor(anchor)}[{string.Join(", ", items)}]")),
            (2, Gen.Select(Gen.Int[0, 5], node.Array[0, 6], (anchor, items) => $"{Anchor(anchor)}{{{string.Join(", ", items.Select((v, k) => $"k{k}: {v}"))}}}"))));

    private static string Anchor(int n) => n < 4 ? $"&a{n} " : "";

    [Fact]
    public void Parse_RandomNestingAndAliases_ReadOrRefusedWithBoundedErrors()
    {
        Gen.Select(Node.Array[1, 8], Gen.Bool).Sample((nodes, asKey) =>
        {
            var body = string.Concat(nodes.Select((n, i) => $"      p{i}: {n}\n"));
            var yaml = StepHead + "    params:\n" + body + (asKey ? "labels:\n  ? " + nodes[^1] + "\n  : x\n" : "");
            try
            {
                PipelineFile.Parse(yaml, "random.yaml");
            }
            catch (PipelineFileException ex)
            {
                Assert.InRange(ex.Errors.Count, 1, 50);
                Assert.All(ex.Errors, e => Assert.InRange(e.Message.Length, 1, 512));
            }
        }, iter: 2000);
    }
}
