using System.Text.Json;
using ControlPlane.V1;
using StackExchange.Redis;
using ControlPlane.Scheduler.Internal;

namespace ControlPlane.Scheduler.Redis.Internal;

/// <summary>
/// Decodes the compact event entries the scripts append (a JSON array per stream entry, field "v",
/// entry id "&lt;seq&gt;-1") into RunEvents built by the shared <see cref="RunEvents"/> factory.
/// </summary>
internal static class EventCodec
{
    /// <summary>Decodes an XRANGE reply (entries of [id, [field, value, ...]]).</summary>
    public static List<RunEvent> DecodeRange(string runId, RedisResult range)
    {
        var result = new List<RunEvent>();
        if (range.IsNull)
        {
            return result;
        }

        foreach (var entry in (RedisResult[])range!)
        {
            var parts = (RedisResult[])entry!;
            var id = (string)parts[0]!;
            var seq = long.Parse(id.AsSpan(0, id.IndexOf('-', StringComparison.Ordinal)), System.Globalization.CultureInfo.InvariantCulture);
            var fields = (RedisResult[])parts[1]!;
            for (var i = 0; i + 1 < fields.Length; i += 2)
            {
                if ((string)fields[i]! == "v")
                {
                    result.Add(Decode(runId, seq, (string)fields[i + 1]!));
                }
            }
        }

        return result;
    }

    public static RunEvent Decode(string runId, long seq, string json)
    {
        using var doc = JsonDocument.Parse(json);
        var a = doc.RootElement;
        var time = DateTimeOffset.FromUnixTimeMilliseconds(a[1].GetInt64());
        return a[0].GetString() switch
        {
            "R" => RunEvents.RunStateChanged(runId, seq, time, (RunState)a[2].GetInt32(), (RunState)a[3].GetInt32(), Str(a[4])),
            "S" => RunEvents.StepStateChanged(
                runId, seq, time, Str(a[2]), (StepState)a[3].GetInt32(), (StepState)a[4].GetInt32(), a[5].GetInt32(), Str(a[6]), Str(a[7])),
            "P" => RunEvents.StepProgressed(runId, seq, time, Str(a[2]), a[3].GetInt32(), a[4].GetDouble(), Str(a[5])),
            "C" => RunEvents.StepCheckpointed(runId, seq, time, Str(a[2]), a[3].GetInt32(), a[4].GetInt64()),
            "L" => RunEvents.StepLogged(runId, seq, time, Str(a[2]), a[3].GetInt32(), (LogStream)a[4].GetInt32(), Lines(a[5])),
            "G" => RunEvents.GateDecided(runId, seq, time, Str(a[2]), a[3].GetInt32() == 1, Str(a[4]), Str(a[5])),
            var kind => throw new InvalidDataException($"run {runId} event {seq} has unknown kind '{kind}'"),
        };
    }

    private static string Str(JsonElement e) => e.ValueKind == JsonValueKind.String ? e.GetString() ?? string.Empty : e.ToString();

    private static List<string> Lines(JsonElement e) =>
        e.ValueKind == JsonValueKind.Array ? e.EnumerateArray().Select(Str).ToList() : [];
}
