using System.Globalization;
using System.Text.Json;

namespace ControlPlane.Rpc.Benchmarks.Internal;

/// <summary>The side-by-side table (medians, ratio ours/grpc-js server) and one JSON line.</summary>
internal static class BenchReport
{
    public static void Print(
        BenchArguments arguments,
        Dictionary<(string Workload, int Callers, string Client, string Server), List<double>> samples,
        string ours,
        string grpcJs)
    {
        var results = new List<object>();
        var ratios = new List<object>();
        Console.WriteLine();
        Console.WriteLine($"{"workload",-26} {"callers",7}  {"client",-16} {"server " + ours,22} {"server " + grpcJs,16} {"ours/grpc-js",13}");
        foreach (var group in samples.GroupBy(kv => (kv.Key.Workload, kv.Key.Callers, kv.Key.Client)).OrderBy(g => g.Key.Client != ours).ThenBy(g => g.Key.Workload).ThenBy(g => g.Key.Callers))
        {
            var unit = group.Key.Workload == "unary" ? "calls/s" : "messages/s";
            var oursMedian = Median(samples[(group.Key.Workload, group.Key.Callers, group.Key.Client, ours)]);
            var jsMedian = Median(samples[(group.Key.Workload, group.Key.Callers, group.Key.Client, grpcJs)]);
            var ratio = jsMedian > 0 ? oursMedian / jsMedian : double.NaN;
            Console.WriteLine(FormattableString.Invariant(
                $"{group.Key.Workload + " (" + unit + ")",-26} {group.Key.Callers,7}  {group.Key.Client,-16} {oursMedian,22:0} {jsMedian,16:0} {ratio,13:0.00}"));
            foreach (var kv in group)
            {
                results.Add(new
                {
                    workload = kv.Key.Workload,
                    unit,
                    callers = kv.Key.Callers,
                    client = kv.Key.Client,
                    server = kv.Key.Server,
                    median = Math.Round(Median(kv.Value), 1),
                    samples = kv.Value.Select(v => Math.Round(v, 1)).ToArray(),
                });
            }

            ratios.Add(new { workload = group.Key.Workload, callers = group.Key.Callers, client = group.Key.Client, ours_vs_grpc_js_server = Math.Round(ratio, 3) });
        }

        Console.WriteLine();
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            benchmark = "transport",
            rounds = arguments.Rounds,
            duration_s = arguments.DurationSeconds,
            warmup_s = arguments.WarmupSeconds,
            payload_bytes = arguments.PayloadBytes,
            processors = Environment.ProcessorCount,
            results,
            ratios,
        }));
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
