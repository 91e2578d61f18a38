using ControlPlane.Internal;
using System.Globalization;
using ControlPlane.V1;
using Google.Protobuf.WellKnownTypes;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace ControlPlane.Client.Internal;

/// <summary>
/// Walks a YAML document into a RunSpec by hand (not by deserializer) so every problem can name its
/// line and column, unknown keys are caught, and each field path keeps the place it was written.
/// </summary>
/// <remarks>
/// The work is bounded by the file's size: the text is capped, and one streaming pass over the parser's events refuses
/// alias bombs, recursive aliases and deep nesting before any node is built (see <see cref="Preflight"/>).
/// </remarks>
internal sealed class PipelineReader
{
    /// <summary>Largest pipeline file, in characters: the scheduler refuses a RunSpec over 4 MiB serialized anyway.</summary>
    public const int MaxFileChars = 4 * 1024 * 1024;

    /// <summary>Most YAML values a document may hold, counting each alias as the whole value it repeats.</summary>
    public const int MaxNodes = 1_000_000;

    /// <summary>
    /// Deepest nesting, counting what aliases expand to. Params may nest 29 levels below a step; each level is two
    /// protobuf messages (Value and Struct or ListValue), so a spec stays inside protobuf's recursion limit of 100.
    /// </summary>
    public const int MaxDepth = 32;

    /// <summary>Most problems listed; the last entry then says that more were found.</summary>
    public const int MaxErrors = 50;

    // How much of a value from the file is quoted back in a message.
    private const int MaxQuoted = 64;

    private static readonly string[] RunKeys = ["name", "labels", "concurrency", "budget", "queue", "retention", "steps"];

    private static readonly string[] StepKeys =
    [
        "id", "kind", "framework", "queue", "run", "handler", "params", "needs", "input_type", "output_type", "retry",
        "timeout", "concurrency_key", "estimate", "keep_output", "run_if", "priority", "slots", "secrets",
    ];

    private static readonly string[] RetryKeys = ["max_attempts", "backoff", "max_backoff", "multiplier"];

    // YAML keys whose RunSpec field has another name; the server reports the RunSpec name.
    private static readonly Dictionary<string, string> ProtoNames = new(StringComparer.Ordinal)
    {
        ["run"] = "command",
        ["multiplier"] = "backoff_multiplier",
    };

    private const string DurationHint = "use e.g. 10m, 30s, 1h, 1h30m or 500ms";

    private readonly string? _path;
    private readonly List<PipelineError> _errors = [];
    private readonly Dictionary<string, PipelineLocation> _locations = new(StringComparer.Ordinal);
    private bool _moreErrors;

    public PipelineReader(string? path)
    {
        _path = path;
    }

    public IReadOnlyList<PipelineError> Errors => _errors;

    public IReadOnlyDictionary<string, PipelineLocation> Locations => _locations;

    /// <summary>The error for a file over <see cref="MaxFileChars"/>, also given before reading one from disk.</summary>
    public static PipelineError TooLarge(string? path, long size, string unit) =>
        new(path, new PipelineLocation(1, 1), string.Empty, $"the file is {size:N0} {unit}; a pipeline file holds at most {MaxFileChars:N0} characters (4 MiB), split the work into several runs");

    public RunSpec Read(string yaml)
    {
        var spec = new RunSpec();
        if (yaml.Length > MaxFileChars)
        {
            _errors.Add(TooLarge(_path, yaml.Length, "characters"));
            return spec;
        }

        var stream = new YamlStream();
        try
        {
            if (!Preflight(yaml))
            {
                return spec;
            }

            stream.Load(new StringReader(yaml));
        }
        catch (YamlException ex)
        {
            var message = Clean(ex.Message);
            const string Duplicate = "Duplicate key ";
            message = message.StartsWith(Duplicate, StringComparison.Ordinal)
                ? $"key {Quote(message[Duplicate.Length..])} is given twice in one mapping; keep one"
                : "not valid YAML: " + message;
            _errors.Add(new PipelineError(_path, At(ex.Start), string.Empty, message));
            return spec;
        }

        if (stream.Documents.Count == 0 || IsNull(stream.Documents[0].RootNode))
        {
            _errors.Add(new PipelineError(_path, new PipelineLocation(1, 1), string.Empty, "the file is empty; a pipeline needs at least 'steps'"));
            return spec;
        }

        if (stream.Documents.Count > 1)
        {
            _errors.Add(new PipelineError(_path, At(stream.Documents[1].RootNode.Start), string.Empty, "a pipeline file holds one YAML document; remove the extra '---' section"));
        }

        var root = stream.Documents[0].RootNode;
        if (root is not YamlMappingNode mapping)
        {
            Error(root, string.Empty, "a pipeline file is a mapping with 'name', 'steps' and the other run fields at the top level");
            return spec;
        }

        ReadRun(mapping, spec);
        _errors.Sort((a, b) => a.Location.Line != b.Location.Line ? a.Location.Line.CompareTo(b.Location.Line) : a.Location.Column.CompareTo(b.Location.Column));
        if (_moreErrors)
        {
            _errors.Add(new PipelineError(_path, _errors[^1].Location, string.Empty, $"more problems were found; only the first {MaxErrors - 1} are listed, fix these and read the file again"));
        }

        return spec;
    }

    /// <summary>
    /// One streaming pass over the parser's events before anything is built. YamlDotNet's loader shares one node between
    /// an anchor and its aliases, but every walk over the tree (this reader's, and the loader's own hashing of collection
    /// keys) visits it again at each alias, so a "billion laughs" file of a few lines expands exponentially; the loader
    /// also recurses once per nesting level and overflows the stack on deep input. Here each anchor's expanded size and
    /// height are computed once, so the whole document's expanded size and depth are known in time linear in the text.
    /// </summary>
    /// <returns>False, with the error recorded, when the document is refused.</returns>
    private bool Preflight(string yaml)
    {
        var parser = new Parser(new StringReader(yaml));
        var anchors = new Dictionary<string, (long Size, int Height, long Chars)?>(StringComparer.Ordinal); // null: still open
        var open = new Stack<(string? Anchor, long Size, int Height, long Chars)>();
        long total = 0;

        // Characters of text once every alias is expanded: an alias of a long string costs its length each time.
        long chars = 0;
        while (parser.MoveNext())
        {
            var current = parser.Current!;
            switch (current)
            {
                case DocumentStart:
                    anchors.Clear();
                    continue;
                case AnchorAlias alias:
                    var name = alias.Value.Value;
                    if (!anchors.TryGetValue(name, out var anchored))
                    {
                        return Refuse(current, $"alias *{Clip(name)} has no anchor &{Clip(name)} before it; define the anchor first");
                    }

                    if (anchored is not { } value)
                    {
                        return Refuse(current, $"alias *{Clip(name)} is used inside the value its anchor &{Clip(name)} names, which would repeat it without end; a pipeline can not refer to itself");
                    }

                    total += value.Size;
                    if (total > MaxNodes)
                    {
                        return Refuse(current, $"the document expands to more than {MaxNodes:N0} values: an alias such as *{Clip(name)} repeats its anchor's whole value each time it is used; write the values out, use fewer aliases, or split the pipeline");
                    }

                    chars += value.Chars;
                    if (chars > MaxFileChars)
                    {
                        return Refuse(current, $"the document expands to more than {MaxFileChars:N0} characters of text: an alias such as *{Clip(name)} repeats its anchor's whole value each time it is used; write the values out, use fewer aliases, or move large params to an artifact store and pass references");
                    }

                    if (open.Count + value.Height > MaxDepth)
                    {
                        return Refuse(current, $"nested deeper than {MaxDepth} levels once *{Clip(name)} is expanded; flatten the structure (params can nest {MaxDepth - 3} levels)");
                    }

                    AddChild(open, value.Size, value.Height, value.Chars);
                    continue;
                case Scalar scalar:
                    total++;
                    chars += scalar.Value.Length;
                    if (!scalar.Anchor.IsEmpty)
                    {
                        anchors[scalar.Anchor.Value] = (1, 0, scalar.Value.Length);
                    }

                    AddChild(open, 1, 0, scalar.Value.Length);
                    break;
                case NodeEvent { } start and (SequenceStart or MappingStart):
                    total++;
                    var anchor = start.Anchor.IsEmpty ? null : start.Anchor.Value;
                    if (anchor is not null)
                    {
                        anchors[anchor] = null;
                    }

                    open.Push((anchor, 1, 1, 0));
                    if (open.Count > MaxDepth)
                    {
                        return Refuse(current, $"nested deeper than {MaxDepth} levels; flatten the structure (params can nest {MaxDepth - 3} levels)");
                    }

                    break;
                case SequenceEnd or MappingEnd:
                    var done = open.Pop();
                    if (done.Anchor is not null)
                    {
                        anchors[done.Anchor] = (done.Size, done.Height, done.Chars);
                    }

                    AddChild(open, done.Size, done.Height, done.Chars);
                    break;
            }

            if (total > MaxNodes)
            {
                return Refuse(current, $"the document has more than {MaxNodes:N0} values; split the pipeline into several runs");
            }
        }

        return true;

        static void AddChild(Stack<(string? Anchor, long Size, int Height, long Chars)> open, long size, int height, long chars)
        {
            if (open.TryPop(out var parent))
            {
                open.Push((parent.Anchor, parent.Size + size, Math.Max(parent.Height, height + 1), parent.Chars + chars));
            }
        }

        bool Refuse(ParsingEvent at, string message)
        {
            _errors.Add(new PipelineError(_path, At(at.Start), string.Empty, message));
            return false;
        }
    }

    private void ReadRun(YamlMappingNode mapping, RunSpec spec)
    {
        var sawSteps = false;
        foreach (var (keyNode, value, key) in Entries(mapping, string.Empty, RunKeys))
        {
            var field = key;
            Record(field, keyNode);
            switch (key)
            {
                case "name":
                    spec.Name = ReadString(value, keyNode, field) ?? string.Empty;
                    break;
                case "labels":
                    ReadStringMap(value, keyNode, field, spec.Labels);
                    break;
                case "concurrency":
                    spec.Concurrency = ReadInt(value, keyNode, field, 0, int.MaxValue) ?? 0;
                    break;
                case "budget":
                    ReadNumberMap(value, keyNode, field, spec.Budget);
                    break;
                case "queue":
                    spec.Queue = ReadString(value, keyNode, field) ?? string.Empty;
                    break;
                case "retention":
                    spec.Retention = ReadDuration(value, keyNode, field);
                    break;
                case "steps":
                    sawSteps = true;
                    ReadSteps(value, keyNode, spec);
                    break;
            }
        }

        if (!sawSteps)
        {
            Error(mapping, "steps", "missing; a pipeline needs a list of steps, e.g. steps: [{ id: hello, framework: shell, run: echo hi }]");
        }
    }

    private void ReadSteps(YamlNode value, YamlNode keyNode, RunSpec spec)
    {
        if (value is not YamlSequenceNode sequence || sequence.Children.Count == 0)
        {
            Error(keyNode, "steps", "expected a non-empty list of steps (each item starts with '- id: ...')");
            return;
        }

        for (var i = 0; i < sequence.Children.Count; i++)
        {
            var item = sequence.Children[i];
            var field = $"steps[{i}]";
            Record(field, item);
            if (item is not YamlMappingNode stepMapping)
            {
                Error(item, field, "expected a step (a mapping with 'id', 'framework', ...)");
                continue;
            }

            spec.Steps.Add(ReadStep(stepMapping, field));
        }
    }

    private StepSpec ReadStep(YamlMappingNode mapping, string prefix)
    {
        var step = new StepSpec();
        var sawId = false;
        foreach (var (keyNode, value, key) in Entries(mapping, prefix, StepKeys))
        {
            var field = prefix + "." + key;
            Record(field, keyNode);
            if (ProtoNames.TryGetValue(key, out var protoName))
            {
                Record(prefix + "." + protoName, keyNode);
            }

            switch (key)
            {
                case "id":
                    sawId = true;
                    step.Id = ReadString(value, keyNode, field) ?? string.Empty;
                    break;
                case "kind":
                    step.Kind = ReadEnum(value, keyNode, field, [("task", StepKind.Task), ("gate", StepKind.Gate)]);
                    break;
                case "framework":
                    step.Framework = ReadString(value, keyNode, field) ?? string.Empty;
                    break;
                case "queue":
                    step.Queue = ReadString(value, keyNode, field) ?? string.Empty;
                    break;
                case "run":
                    step.Command = ReadString(value, keyNode, field) ?? string.Empty;
                    break;
                case "handler":
                    step.Handler = ReadString(value, keyNode, field) ?? string.Empty;
                    break;
                case "params":
                    step.Params = ReadParams(value, keyNode, field);
                    break;
                case "needs":
                    ReadStringList(value, keyNode, field, step.Needs);
                    break;
                case "input_type":
                    step.InputType = ReadString(value, keyNode, field) ?? string.Empty;
                    break;
                case "output_type":
                    step.OutputType = ReadString(value, keyNode, field) ?? string.Empty;
                    break;
                case "retry":
                    step.Retry = ReadRetry(value, keyNode, field);
                    break;
                case "timeout":
                    step.Timeout = ReadDuration(value, keyNode, field);
                    break;
                case "concurrency_key":
                    step.ConcurrencyKey = ReadString(value, keyNode, field) ?? string.Empty;
                    break;
                case "estimate":
                    ReadNumberMap(value, keyNode, field, step.Estimate);
                    break;
                case "keep_output":
                    step.KeepOutput = ReadBool(value, keyNode, field) ?? false;
                    break;
                case "run_if":
                    step.RunIf = ReadEnum(value, keyNode, field, [("on_success", RunIf.OnSuccess), ("always", RunIf.Always), ("on_failure", RunIf.OnFailure)]);
                    break;
                case "priority":
                    step.Priority = ReadInt(value, keyNode, field, int.MinValue, int.MaxValue) ?? 0;
                    break;
                case "slots":
                    step.Slots = ReadInt(value, keyNode, field, 1, int.MaxValue) ?? 0;
                    break;
                case "secrets":
                    ReadStringList(value, keyNode, field, step.Secrets);
                    break;
            }
        }

        if (!sawId)
        {
            Error(mapping, prefix + ".id", "missing; every step needs an id such as 'build' ([a-z0-9][a-z0-9._-]*)");
        }

        return step;
    }

    private RetryPolicy? ReadRetry(YamlNode value, YamlNode keyNode, string prefix)
    {
        if (IsNull(value))
        {
            return null;
        }

        if (value is not YamlMappingNode mapping)
        {
            Error(keyNode, prefix, "expected a mapping such as { max_attempts: 3, backoff: 2s, max_backoff: 1m, multiplier: 2 }");
            return null;
        }

        var retry = new RetryPolicy();
        foreach (var (key, entry, name) in Entries(mapping, prefix, RetryKeys))
        {
            var field = prefix + "." + name;
            Record(field, key);
            if (ProtoNames.TryGetValue(name, out var protoName))
            {
                Record(prefix + "." + protoName, key);
            }

            switch (name)
            {
                case "max_attempts":
                    retry.MaxAttempts = ReadInt(entry, key, field, 0, 100) ?? 0;
                    break;
                case "backoff":
                    retry.Backoff = ReadDuration(entry, key, field);
                    break;
                case "max_backoff":
                    retry.MaxBackoff = ReadDuration(entry, key, field);
                    break;
                case "multiplier":
                    var multiplier = ReadNumber(entry, key, field);
                    if (multiplier is < 1)
                    {
                        Error(key, field, $"{Format(multiplier.Value)} is below 1; each wait is the previous one times this factor, so use 1 (constant) or more");
                    }

                    retry.BackoffMultiplier = multiplier ?? 0;
                    break;
            }
        }

        return retry;
    }

    /// <summary>The entries of a mapping with string keys; reports unknown and duplicate keys.</summary>
    private IEnumerable<(YamlNode Key, YamlNode Value, string Name)> Entries(YamlMappingNode mapping, string prefix, string[]? known)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (keyNode, value) in mapping.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { } name })
            {
                Error(keyNode, prefix, "keys must be plain strings");
                continue;
            }

            var field = prefix.Length == 0 ? name : prefix + "." + name;
            if (!seen.Add(name))
            {
                Error(keyNode, field, "is given twice; keep one");
                continue;
            }

            if (known is not null && Array.IndexOf(known, name) < 0)
            {
                var suggestion = Suggest(name, known);
                var hint = suggestion is null ? string.Empty : $"did you mean '{suggestion}'? ";
                Error(keyNode, field, $"unknown key {Quote(name)}; {hint}known keys here: {string.Join(", ", known)}");
                continue;
            }

            yield return (keyNode, value, name);
        }
    }

    private string? ReadString(YamlNode value, YamlNode keyNode, string field)
    {
        if (IsNull(value))
        {
            return null;
        }

        if (value is not YamlScalarNode scalar)
        {
            Error(keyNode, field, "expected a single value (text), not a list or a mapping");
            return null;
        }

        return scalar.Value ?? string.Empty;
    }

    private int? ReadInt(YamlNode value, YamlNode keyNode, string field, int min, int max)
    {
        var text = ReadString(value, keyNode, field);
        if (text is null)
        {
            return null;
        }

        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number))
        {
            Error(keyNode, field, $"{Quote(text)} is not a whole number");
            return null;
        }

        if (number < min || number > max)
        {
            var range = max == int.MaxValue ? $"at least {min}" : $"between {min} and {max}";
            Error(keyNode, field, $"{number} is out of range; use a whole number {range}");
            return null;
        }

        return (int)number;
    }

    private double? ReadNumber(YamlNode value, YamlNode keyNode, string field)
    {
        var text = ReadString(value, keyNode, field);
        if (text is null)
        {
            return null;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) || !double.IsFinite(number))
        {
            Error(keyNode, field, $"{Quote(text)} is not a number");
            return null;
        }

        return number;
    }

    private bool? ReadBool(YamlNode value, YamlNode keyNode, string field)
    {
        var text = ReadString(value, keyNode, field);
        if (text is null)
        {
            return null;
        }

        if (bool.TryParse(text, out var flag))
        {
            return flag;
        }

        Error(keyNode, field, $"{Quote(text)} is not a boolean; use true or false");
        return null;
    }

    private Duration? ReadDuration(YamlNode value, YamlNode keyNode, string field)
    {
        var text = ReadString(value, keyNode, field);
        if (text is null)
        {
            return null;
        }

        if (!DurationText.TryParse(text.Trim(), out var duration))
        {
            Error(keyNode, field, $"{Quote(text)} is not a duration; {DurationHint}");
            return null;
        }

        return Duration.FromTimeSpan(duration);
    }

    private T ReadEnum<T>(YamlNode value, YamlNode keyNode, string field, (string Name, T Value)[] choices)
        where T : struct, System.Enum
    {
        var text = ReadString(value, keyNode, field);
        if (text is null)
        {
            return default;
        }

        foreach (var (name, choice) in choices)
        {
            if (string.Equals(name, text, StringComparison.Ordinal))
            {
                return choice;
            }
        }

        Error(keyNode, field, $"{Quote(text)} is not one of {string.Join(", ", choices.Select(c => c.Name))}");
        return default;
    }

    private void ReadStringMap(YamlNode value, YamlNode keyNode, string field, Google.Protobuf.Collections.MapField<string, string> target)
    {
        if (IsNull(value))
        {
            return;
        }

        if (value is not YamlMappingNode mapping)
        {
            Error(keyNode, field, "expected a mapping of names to values, e.g. { team: vision }");
            return;
        }

        foreach (var (key, entry, name) in Entries(mapping, field, known: null))
        {
            Record($"{field}.{name}", key);
            Record($"{field}[{name}]", key);
            var text = ReadString(entry, key, $"{field}.{name}");
            if (text is not null)
            {
                target[name] = text;
            }
        }
    }

    private void ReadNumberMap(YamlNode value, YamlNode keyNode, string field, Google.Protobuf.Collections.MapField<string, double> target)
    {
        if (IsNull(value))
        {
            return;
        }

        if (value is not YamlMappingNode mapping)
        {
            Error(keyNode, field, "expected a mapping of unit names to amounts, e.g. { cpu_seconds: 3600 }");
            return;
        }

        foreach (var (key, entry, name) in Entries(mapping, field, known: null))
        {
            Record($"{field}.{name}", key);
            Record($"{field}[{name}]", key);
            var number = ReadNumber(entry, key, $"{field}.{name}");
            if (number is < 0)
            {
                Error(key, $"{field}.{name}", $"{Format(number.Value)} is negative; amounts are 0 or more");
            }
            else if (number is { } amount)
            {
                target[name] = amount;
            }
        }
    }

    private void ReadStringList(YamlNode value, YamlNode keyNode, string field, Google.Protobuf.Collections.RepeatedField<string> target)
    {
        if (IsNull(value))
        {
            return;
        }

        if (value is not YamlSequenceNode sequence)
        {
            Error(keyNode, field, "expected a list of step ids, e.g. [build, test]");
            return;
        }

        for (var i = 0; i < sequence.Children.Count; i++)
        {
            var item = sequence.Children[i];
            var itemField = $"{field}[{i}]";
            Record(itemField, item);
            if (item is not YamlScalarNode scalar || IsNull(item))
            {
                Error(item, itemField, "expected a step id");
                continue;
            }

            target.Add(scalar.Value ?? string.Empty);
        }
    }

    private Struct? ReadParams(YamlNode value, YamlNode keyNode, string field)
    {
        if (IsNull(value))
        {
            return null;
        }

        if (value is not YamlMappingNode mapping)
        {
            Error(keyNode, field, "expected a mapping of parameter names to values, e.g. { width: 640 }");
            return null;
        }

        return ToStruct(mapping, field);
    }

    private Struct ToStruct(YamlMappingNode mapping, string field)
    {
        var result = new Struct();
        foreach (var (key, entry, name) in Entries(mapping, field, known: null))
        {
            var entryField = $"{field}.{name}";
            Record(entryField, key);
            result.Fields[name] = ToValue(entry, entryField);
        }

        return result;
    }

    private Value ToValue(YamlNode node, string field)
    {
        switch (node)
        {
            case YamlMappingNode mapping:
                return Value.ForStruct(ToStruct(mapping, field));
            case YamlSequenceNode sequence:
                var values = new Value[sequence.Children.Count];
                for (var i = 0; i < values.Length; i++)
                {
                    Record($"{field}[{i}]", sequence.Children[i]);
                    values[i] = ToValue(sequence.Children[i], $"{field}[{i}]");
                }

                return Value.ForList(values);
            case YamlScalarNode scalar:
                return ScalarValue(scalar);
            default:
                Error(node, field, "unsupported YAML node");
                return Value.ForNull();
        }
    }

    /// <summary>YAML 1.2 core-schema resolution for plain scalars; quoted scalars are always text.</summary>
    private static Value ScalarValue(YamlScalarNode scalar)
    {
        var text = scalar.Value ?? string.Empty;
        if (scalar.Style is not ScalarStyle.Plain)
        {
            return Value.ForString(text);
        }

        if (IsNull(scalar))
        {
            return Value.ForNull();
        }

        switch (text)
        {
            case "true" or "True" or "TRUE":
                return Value.ForBool(true);
            case "false" or "False" or "FALSE":
                return Value.ForBool(false);
        }

        if (text.Length > 0 && (char.IsAsciiDigit(text[0]) || text[0] is '-' or '+' or '.')
            && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number))
        {
            return Value.ForNumber(number);
        }

        return Value.ForString(text);
    }

    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: null or "" or "~" or "null" or "Null" or "NULL" };

    private void Record(string field, YamlNode node) => _locations.TryAdd(field, At(node.Start));

    private void Error(YamlNode node, string field, string message)
    {
        if (_errors.Count >= MaxErrors - 1)
        {
            _moreErrors = true;
            return;
        }

        _errors.Add(new PipelineError(_path, At(node.Start), Clip(field, 4 * MaxQuoted), message));
    }

    /// <summary>A value from the file, quoted, clipped to <see cref="MaxQuoted"/> characters with its full length said.</summary>
    private static string Quote(string value) =>
        value.Length <= MaxQuoted ? $"'{value}'" : $"'{Clip(value)}' ({value.Length:N0} characters)";

    /// <summary>At most <paramref name="max"/> characters of <paramref name="value"/>, never splitting a surrogate pair.</summary>
    private static string Clip(string value, int max = MaxQuoted)
    {
        if (value.Length <= max)
        {
            return value;
        }

        var cut = char.IsHighSurrogate(value[max - 2]) ? max - 2 : max - 1;
        return string.Concat(value.AsSpan(0, cut), "…");
    }

    private static PipelineLocation At(Mark mark) => new((int)Math.Max(1, mark.Line), (int)Math.Max(1, mark.Column));

    private static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);

    // YamlDotNet messages start with "(Line: 3, Col: 5, Idx: 20) - (Line: ...): "; the location is printed already.
    private static string Clean(string message)
    {
        var marker = message.IndexOf("): ", StringComparison.Ordinal);
        return message.StartsWith("(Line:", StringComparison.Ordinal) && marker >= 0 ? message[(marker + 3)..] : message;
    }

    private static string? Suggest(string name, string[] known)
    {
        string? best = null;
        var bestDistance = 3;
        foreach (var candidate in known)
        {
            var distance = EditDistance.AtMost(name, candidate, bestDistance - 1);
            if (distance < bestDistance)
            {
                best = candidate;
                bestDistance = distance;
            }
        }

        return best;
    }
}
