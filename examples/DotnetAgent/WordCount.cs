using System.Text.Json;
using ControlPlane.Agent;

namespace DotnetAgent;

/// <summary>
/// Counts the lines and words of its inputs and outputs JSON: <c>{"lines":N,"words":N,"top":[{"word":"the","count":4}]}</c>.
/// Params: <c>top</c> (how many of the most frequent words to list; default 5). It checkpoints every
/// <see cref="CheckpointEvery"/> lines, so a retried attempt continues where the last one stopped.
/// </summary>
public sealed class WordCount : IStepHandler
{
    private const int CheckpointEvery = 100;

    /// <inheritdoc />
    public async Task<StepHandlerResult> HandleAsync(IStepContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var settings = context.GetParams<WordCountParams>() ?? new WordCountParams();
        if (settings.Top is < 1 or > 1000)
        {
            return StepHandlerResult.Failure($"params.top is {settings.Top}; use a number from 1 to 1000, e.g. params: {{ top: 5 }}", permanent: true);
        }

        if (context.Inputs.Count == 0)
        {
            return StepHandlerResult.Failure("word-count has no input; give the step 'needs' on a step whose output is text", permanent: true);
        }

        var lines = context.Inputs.OrderBy(i => i.Key, StringComparer.Ordinal)
            .SelectMany(i => i.Value.GetString().Split('\n', StringSplitOptions.RemoveEmptyEntries))
            .ToArray();
        var state = context.LastCheckpoint is { } checkpoint
            ? JsonSerializer.Deserialize<WordCountState>(checkpoint.Span) ?? new WordCountState()
            : new WordCountState();
        if (state.Line > 0)
        {
            context.Log($"resuming at line {state.Line + 1} of {lines.Length} from the checkpoint of an earlier attempt");
        }

        for (var i = state.Line; i < lines.Length; i++)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            foreach (var word in lines[i].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
            {
                var key = word.Trim('.', ',', ';', ':', '!', '?', '"', '\'').ToLowerInvariant();
                if (key.Length > 0)
                {
                    state.Words++;
                    state.Counts[key] = state.Counts.GetValueOrDefault(key) + 1;
                }
            }

            state.Line = i + 1;
            if (state.Line % CheckpointEvery == 0 || state.Line == lines.Length)
            {
                await context.CheckpointAsync(JsonSerializer.SerializeToUtf8Bytes(state)).ConfigureAwait(false);
                context.ReportProgress(100.0 * state.Line / lines.Length, $"{state.Line}/{lines.Length} lines");
            }
        }

        context.ReportUsage("words", state.Words);
        context.Log($"counted {state.Words} words in {lines.Length} lines");
        var top = state.Counts
            .OrderByDescending(c => c.Value)
            .ThenBy(c => c.Key, StringComparer.Ordinal)
            .Take(settings.Top)
            .Select(c => new { word = c.Key, count = c.Value });
        return StepHandlerResult.FromString(JsonSerializer.Serialize(new { lines = lines.Length, words = state.Words, top }));
    }

    private sealed class WordCountParams
    {
        public int Top { get; set; } = 5;
    }

    private sealed class WordCountState
    {
        public int Line { get; set; }

        public int Words { get; set; }

        public Dictionary<string, int> Counts { get; set; } = new(StringComparer.Ordinal);
    }
}
