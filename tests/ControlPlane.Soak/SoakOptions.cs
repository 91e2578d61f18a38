using System.Globalization;

namespace ControlPlane.Soak;

/// <summary>The driver's flags.</summary>
internal sealed class SoakOptions
{
    public static readonly string Usage =
        "usage: cp-soak [--minutes N (2)] [--seed S (random, printed)] [--check-memory] [--retention SECONDS] [--keep] [--faults KIND,... (all)]\n" +
        "  --minutes N       how long pipelines are submitted and faults injected (a decimal, e.g. 0.5); a drain follows\n" +
        "  --seed S          seeds every choice: pipeline kinds and shapes, fault kinds, targets and pauses\n" +
        "  --check-memory    fail when scheduler RSS or Redis used_memory at the end is over 110 % of its warmed-up value\n" +
        "  --retention S     every run is kept S seconds once finished (RunSpec.retention); runs deleted before the end\n" +
        "                    are checked from what the driver saw when they ended, and the end figures are taken once\n" +
        "                    the last run's retention has passed (with --check-memory: memory after retention)\n" +
        "  --keep            keep the soak's directory (process logs, ledger) even when every invariant holds\n" +
        "  --faults LIST     the fault kinds to inject, comma-separated: " + FaultKinds.AllNames + "; 'none' for none";

    public double Minutes { get; private set; } = 2;

    public int Seed { get; private set; } = Random.Shared.Next(1, 1_000_000);

    public bool CheckMemory { get; private set; }

    public bool Keep { get; private set; }

    /// <summary>RunSpec.retention of every run; null: the server default.</summary>
    public TimeSpan? Retention { get; private set; }

    public IReadOnlySet<string> Faults { get; private set; } = FaultKinds.All.ToHashSet(StringComparer.Ordinal);

    public static SoakOptions Parse(string[] args)
    {
        var options = new SoakOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            switch (name)
            {
                case "--check-memory": options.CheckMemory = true; continue;
                case "--keep": options.Keep = true; continue;
                default: break;
            }

            if (i + 1 >= args.Length)
            {
                throw new ArgumentException($"{name} needs a value, e.g. {name} 3");
            }

            var value = args[++i];
            switch (name)
            {
                case "--minutes":
                    options.Minutes = double.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var minutes) && minutes > 0 && minutes <= 24 * 60
                        ? minutes
                        : throw new ArgumentException($"--minutes is '{value}'; give a number of minutes above 0 and at most 1440, e.g. --minutes 3");
                    break;
                case "--seed":
                    options.Seed = int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var seed)
                        ? seed
                        : throw new ArgumentException($"--seed is '{value}'; give an integer, e.g. --seed 42");
                    break;
                case "--retention":
                    options.Retention = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds is > 0 and <= 24 * 3600
                        ? TimeSpan.FromSeconds(seconds)
                        : throw new ArgumentException($"--retention is '{value}'; give whole seconds above 0 and at most 86400, e.g. --retention 180");
                    break;
                case "--faults":
                    options.Faults = ParseFaults(value);
                    break;
                default:
                    throw new ArgumentException($"unknown flag {name}");
            }
        }

        return options;
    }

    private static HashSet<string> ParseFaults(string value)
    {
        if (value == "none")
        {
            return new HashSet<string>(StringComparer.Ordinal);
        }

        var kinds = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
        var unknown = kinds.Where(k => !FaultKinds.All.Contains(k)).ToList();
        if (kinds.Count == 0 || unknown.Count > 0)
        {
            throw new ArgumentException($"--faults: unknown kind(s) '{string.Join(",", unknown)}'; use a comma-separated list of {FaultKinds.AllNames}, or none");
        }

        return kinds;
    }
}
