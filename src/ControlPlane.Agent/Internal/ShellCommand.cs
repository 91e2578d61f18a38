using System.Globalization;

namespace ControlPlane.Agent.Internal;

/// <summary>A parsed "::cp ..." line from a shell step's stdout.</summary>
internal abstract record ShellCommand
{
    private const string Prefix = "::cp ";

    /// <summary>Parses a stdout line. Null: not a command (an ordinary log line). <see cref="Invalid"/>: a malformed command.</summary>
    public static ShellCommand? Parse(string line)
    {
        if (!line.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return null;
        }

        var rest = line[Prefix.Length..].TrimStart();
        var space = rest.IndexOf(' ', StringComparison.Ordinal);
        var verb = space < 0 ? rest : rest[..space];
        var args = space < 0 ? string.Empty : rest[(space + 1)..].Trim();
        switch (verb)
        {
            case "progress":
                {
                    var split = args.IndexOf(' ', StringComparison.Ordinal);
                    var number = split < 0 ? args : args[..split];
                    var message = split < 0 ? string.Empty : args[(split + 1)..].Trim();
                    if (!double.TryParse(number.TrimEnd('%'), NumberStyles.Float, CultureInfo.InvariantCulture, out var percent) || double.IsNaN(percent))
                    {
                        return new Invalid($"::cp progress needs a number 0-100 first, e.g. '::cp progress 40 resizing'; got '{number}'");
                    }

                    return new Progress(Math.Clamp(percent, 0, 100), message);
                }

            case "checkpoint":
                return args.Length == 0
                    ? new Invalid("::cp checkpoint needs the path of a file whose bytes become the checkpoint, e.g. '::cp checkpoint state.json'")
                    : new Checkpoint(args);

            case "usage":
                {
                    var amounts = new Dictionary<string, double>(StringComparer.Ordinal);
                    foreach (var pair in args.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    {
                        var eq = pair.IndexOf('=', StringComparison.Ordinal);
                        if (eq <= 0 || !double.TryParse(pair[(eq + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var amount)
                            || double.IsNaN(amount) || double.IsInfinity(amount))
                        {
                            return new Invalid($"::cp usage takes <unit>=<number> pairs, e.g. '::cp usage cpu_seconds=1.5 tokens=300'; got '{pair}'");
                        }

                        amounts[pair[..eq]] = amounts.GetValueOrDefault(pair[..eq]) + amount;
                    }

                    return amounts.Count == 0
                        ? new Invalid("::cp usage takes <unit>=<number> pairs, e.g. '::cp usage cpu_seconds=1.5'")
                        : new Usage(amounts);
                }

            default:
                return new Invalid($"unknown command '::cp {verb}'; the commands are progress, checkpoint and usage");
        }
    }

    internal sealed record Progress(double Percent, string Message) : ShellCommand;

    internal sealed record Checkpoint(string Path) : ShellCommand;

    internal sealed record Usage(IReadOnlyDictionary<string, double> Amounts) : ShellCommand;

    internal sealed record Invalid(string Error) : ShellCommand;
}
