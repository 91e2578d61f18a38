using System.Globalization;

namespace ControlPlane.Bench;

/// <summary>Driver flags; every size can be shrunk for a quick run.</summary>
internal sealed class BenchOptions
{
    public const string Usage =
        "usage: cp-bench validation (only the worst-case validation figures)\n" +
        "       cp-bench [--agents K (2)] [--slots N per agent (64)] [--fanout-runs N (200)] [--fanout-width N (100)] " +
        "[--dag-runs N (2000)] [--dag-children N (10)] [--wide-steps N (10000)] [--seq-runs N (500)] [--warmup-rounds N (4)] [--paced-seconds N (5)] " +
        "[--scheduler PATH to cp-scheduler.dll] [--redis HOST:PORT of a running redis-server (default: start a private one)] [--json-out FILE]";

    public int Agents { get; private set; } = 2;

    public int Slots { get; private set; } = 64;

    public int FanoutRuns { get; private set; } = 200;

    public int FanoutWidth { get; private set; } = 100;

    public int DagRuns { get; private set; } = 2000;

    public int DagChildren { get; private set; } = 10;

    public int WideSteps { get; private set; } = 10_000;

    public int SeqRuns { get; private set; } = 500;

    public int WarmupRounds { get; private set; } = 4;

    public int PacedSeconds { get; private set; } = 5;

    public string SchedulerPath { get; private set; } = DefaultSchedulerPath();

    public string? JsonOut { get; private set; }

    public string? Redis { get; private set; }

    public static BenchOptions Parse(string[] args)
    {
        var options = new BenchOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            if (i + 1 >= args.Length)
            {
                throw new ArgumentException($"{name} needs a value, e.g. {name} 10");
            }

            var value = args[++i];
            switch (name)
            {
                case "--agents": options.Agents = Positive(name, value); break;
                case "--slots": options.Slots = Positive(name, value); break;
                case "--fanout-runs": options.FanoutRuns = Positive(name, value); break;
                case "--fanout-width": options.FanoutWidth = Positive(name, value); break;
                case "--dag-runs": options.DagRuns = Positive(name, value); break;
                case "--dag-children": options.DagChildren = Positive(name, value); break;
                case "--wide-steps": options.WideSteps = Positive(name, value); break;
                case "--seq-runs": options.SeqRuns = Positive(name, value); break;
                case "--warmup-rounds": options.WarmupRounds = Positive(name, value); break;
                case "--paced-seconds": options.PacedSeconds = Positive(name, value); break;
                case "--scheduler": options.SchedulerPath = value; break;
                case "--json-out": options.JsonOut = value; break;
                case "--redis": options.Redis = value.Contains(':', StringComparison.Ordinal) ? value : throw new ArgumentException($"--redis is '{value}'; give HOST:PORT, e.g. --redis 127.0.0.1:6379"); break;
                default: throw new ArgumentException($"unknown flag {name}");
            }
        }

        if (!File.Exists(options.SchedulerPath))
        {
            throw new ArgumentException($"--scheduler: {options.SchedulerPath} does not exist; build it with: dotnet build src/ControlPlane.Scheduler.Host -c Release, or pass --scheduler PATH/cp-scheduler.dll");
        }

        return options;
    }

    private static int Positive(string name, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new ArgumentException($"{name} is '{value}'; give a whole number above 0, e.g. {name} 10");

    // The bench's own output dir is tests/ControlPlane.Bench/bin/CONFIG/net10.0; the scheduler host's mirrors it under src/.
    private static string DefaultSchedulerPath()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        var tfm = dir.Name;
        var config = dir.Parent?.Name ?? "Release";
        var root = dir.Parent?.Parent?.Parent?.Parent?.Parent?.FullName ?? ".";
        return Path.Combine(root, "src", "ControlPlane.Scheduler.Host", "bin", config, tfm, "cp-scheduler.dll");
    }
}
