using System.Text;
using System.Text.Json;
using ControlPlane.V1;
using ControlPlane.Scheduler.Internal;

namespace ControlPlane.Scheduler.Redis.Internal;

/// <summary>
/// The compact per-step data the Lua scripts read instead of the StepSpec: defaults resolved, and each
/// step's children and its needs' fan-out precomputed, so unblocking a child needs no extra read. It
/// holds nothing step-specific beyond that, so steps of one shape (the branches of a fan-out) store the
/// same text and the scripts decode it once per call.
/// </summary>
internal static class StepMeta
{
    /// <summary>One JSON object per step, in spec order.</summary>
    public static IReadOnlyList<string> Build(RunSpec spec)
    {
        var steps = spec.Steps;
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < steps.Count; i++)
        {
            index[steps[i].Id] = i;
        }

        var children = new List<int>[steps.Count];
        for (var i = 0; i < steps.Count; i++)
        {
            children[i] = [];
        }

        for (var i = 0; i < steps.Count; i++)
        {
            foreach (var need in steps[i].Needs.Distinct(StringComparer.Ordinal))
            {
                children[index[need]].Add(i);
            }
        }

        var result = new string[steps.Count];
        using var buffer = new MemoryStream();
        for (var i = 0; i < steps.Count; i++)
        {
            buffer.SetLength(0);
            using (var w = new Utf8JsonWriter(buffer))
            {
                Write(w, spec, steps[i], i, steps, index, children);
            }

            result[i] = Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
        }

        return result;
    }

    private static void Write(
        Utf8JsonWriter w, RunSpec spec, StepSpec s, int i, IList<StepSpec> steps, Dictionary<string, int> index, List<int>[] children)
    {
        var needs = s.Needs.Distinct(StringComparer.Ordinal).ToList();
        w.WriteStartObject();
        w.WriteString("q", StepDefaults.QueueOf(spec, s));
        w.WriteString("fw", s.Framework);
        w.WriteString("h", s.Framework == StepDefaults.DotnetFramework ? s.Handler : string.Empty);
        w.WriteString("k", s.ConcurrencyKey);
        w.WriteNumber("sl", StepDefaults.SlotsOf(s));
        w.WritePropertyName("e");
        w.WriteStartObject();
        foreach (var (unit, amount) in s.Estimate)
        {
            w.WriteNumber(unit, amount);
        }

        w.WriteEndObject();
        w.WriteNumber("pr", s.Priority);
        w.WriteNumber("ri", (int)StepDefaults.RunIfOf(s));
        w.WriteNumber("g", StepDefaults.KindOf(s) == StepKind.Gate ? 1 : 0);
        w.WriteNumber("to", s.Timeout is { } t ? (long)t.ToTimeSpan().TotalMilliseconds : 0);
        w.WriteNumber("ma", RetryBackoff.MaxAttempts(s.Retry));
        var backoff = s.Retry?.Backoff is { } b ? b.ToTimeSpan() : RetryBackoff.DefaultBackoff;
        var multiplier = s.Retry is { BackoffMultiplier: > 0 } ? s.Retry.BackoffMultiplier : RetryBackoff.DefaultMultiplier;
        var max = s.Retry?.MaxBackoff is { } m ? m.ToTimeSpan() : RetryBackoff.DefaultMaxBackoff;
        w.WriteNumber("bo", (long)backoff.TotalMilliseconds);
        w.WriteNumber("bm", multiplier);
        w.WriteNumber("bx", (long)max.TotalMilliseconds);
        w.WriteString("ot", s.OutputType);
        WriteArray(w, "n", needs.Select(n => (object)n));
        WriteArray(w, "it", needs.Select(n => (object)steps[index[n]].OutputType));
        WriteArray(w, "pc", needs.Select(n => (object)children[index[n]].Count));
        WriteArray(w, "pk", needs.Select(n => (object)(steps[index[n]].KeepOutput || StepDefaults.KindOf(steps[index[n]]) == StepKind.Gate ? 1 : 0)));
        w.WritePropertyName("c");
        w.WriteStartArray();
        foreach (var c in children[i])
        {
            var child = steps[c];
            w.WriteStartArray();
            w.WriteStringValue(child.Id);
            w.WriteNumberValue(child.Needs.Distinct(StringComparer.Ordinal).Count());
            w.WriteNumberValue((int)StepDefaults.RunIfOf(child));
            w.WriteNumberValue(StepDefaults.KindOf(child) == StepKind.Gate ? 1 : 0);
            w.WriteStringValue(StepDefaults.QueueOf(spec, child));
            w.WriteNumberValue(child.Priority);
            w.WriteEndArray();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteArray(Utf8JsonWriter w, string name, IEnumerable<object> values)
    {
        w.WritePropertyName(name);
        w.WriteStartArray();
        foreach (var v in values)
        {
            if (v is string s)
            {
                w.WriteStringValue(s);
            }
            else
            {
                w.WriteNumberValue((int)v);
            }
        }

        w.WriteEndArray();
    }

    /// <summary>A JSON object of budget units, as the scripts store usage and reservations.</summary>
    public static string Units(IEnumerable<KeyValuePair<string, double>> units)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach (var (unit, amount) in units)
            {
                w.WriteNumber(unit, amount);
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static string Strings(IEnumerable<string> values) => JsonSerializer.Serialize(values.ToArray());

    public static string Map(IEnumerable<KeyValuePair<string, string>> values) =>
        JsonSerializer.Serialize(values.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal));

    /// <summary>Reads a JSON object of numbers; Lua's cjson writes an empty table as {} or [].</summary>
    public static Dictionary<string, double> ParseUnits(string? json)
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        if (string.IsNullOrEmpty(json))
        {
            return result;
        }

        using var doc = JsonDocument.Parse(json);
        if (doc.RootElement.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                result[p.Name] = p.Value.GetDouble();
            }
        }

        return result;
    }

    public static Dictionary<string, string> ParseMap(string? json)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (string.IsNullOrEmpty(json))
        {
            return result;
        }

        using var doc = JsonDocument.Parse(json);
        if (doc.RootElement.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                result[p.Name] = p.Value.GetString() ?? string.Empty;
            }
        }

        return result;
    }

    public static List<string> ParseStrings(string? json)
    {
        var result = new List<string>();
        if (string.IsNullOrEmpty(json))
        {
            return result;
        }

        using var doc = JsonDocument.Parse(json);
        if (doc.RootElement.ValueKind == JsonValueKind.Array)
        {
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                result.Add(e.GetString() ?? string.Empty);
            }
        }

        return result;
    }
}
