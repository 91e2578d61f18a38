using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using ControlPlane.Hosting.Internal;

namespace ControlPlane.Hosting;

/// <summary>
/// A daemon's declared settings table and the one loader both daemons use. Sources, later winning: the deprecated
/// appsettings.json section, the JSON file named by --config / CP_CONFIG, CP_ environment variables, flags. Unknown
/// flags and unknown keys in the --config file are errors; unrelated CP_ variables (CP_TOKEN, a step's CP_RUN_ID) are not.
/// </summary>
/// <typeparam name="TOptions">The daemon's options class; its validation throws <see cref="ArgumentException"/> with ParamName set to the property.</typeparam>
public sealed partial class DaemonSettings<TOptions>
    where TOptions : class, new()
{
    // Sources in precedence order; a list setting takes its items from the last source that has any.
    private const int LegacyJsonGroup = 0;
    private const int JsonGroup = 1;
    private const int LegacyEnvironmentGroup = 2;
    private const int EnvironmentGroup = 3;
    private const int FlagGroup = 4;

    private readonly DaemonSetting<TOptions>[] _rows;
    private readonly Action<TOptions> _validate;

    /// <param name="settings">The daemon's own settings; --config and --log-level are added for every daemon.</param>
    /// <param name="validate">Checks the options as a whole (ranges, settings that depend on each other).</param>
    /// <param name="deprecated">Old names still accepted, with a warning.</param>
    public DaemonSettings(IEnumerable<DaemonSetting<TOptions>> settings, Action<TOptions> validate, DeprecatedNames? deprecated = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(validate);
        _rows = [DaemonSetting<TOptions>.ConfigFile(), .. settings, DaemonSetting<TOptions>.LogLevelSetting()];
        var duplicate = _rows.GroupBy(r => r.Name, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"setting {duplicate.Key} is declared twice", nameof(settings));
        }

        _validate = validate;
        Deprecated = deprecated ?? new DeprecatedNames();
    }

    /// <summary>Every setting in the order --help lists them: --config first, --log-level last.</summary>
    public IReadOnlyList<DaemonSetting<TOptions>> Settings => _rows;

    /// <summary>The old names accepted with a warning.</summary>
    public DeprecatedNames Deprecated { get; }

    /// <summary>
    /// Sets of settings that are ways of giving one value (Token, TokenFile): of those given, only the ones from the
    /// source that wins apply, so a flag beats a variable left in the environment for another program (CP_TOKEN for
    /// cpctl). Two given by the same source stay for the options' validation to refuse.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<string>> Alternatives { get; init; } = [];

    /// <summary>
    /// Loads the settings for a process: prints usage on --help (exit code 0), deprecation warnings on stderr, or one
    /// "error: ..." line for a bad setting (exit code 2). Returns true when the daemon should start.
    /// </summary>
    public bool TryLoad(IReadOnlyList<string> args, DaemonContext context, [NotNullWhen(true)] out DaemonConfiguration<TOptions>? configuration, out int exitCode)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(context);
        configuration = null;
        if (args.Any(a => a is "--help" or "-h"))
        {
            context.Out.WriteLine(Usage(context.ProgramName));
            exitCode = 0;
            return false;
        }

        try
        {
            configuration = Load(args, context);
        }
        catch (SettingException ex)
        {
            context.Error.WriteLine("error: " + ex.Message);
            exitCode = SettingException.ExitCode;
            return false;
        }

        foreach (var warning in configuration.Warnings)
        {
            context.Error.WriteLine("warning: " + warning);
        }

        exitCode = 0;
        return true;
    }

    /// <summary>Loads and validates the settings from <paramref name="args"/> and <paramref name="context"/>'s environment and files.</summary>
    /// <exception cref="SettingException">A setting is unknown or wrong; the message says which, how to fix it, and where it came from.</exception>
    public DaemonConfiguration<TOptions> Load(IReadOnlyList<string> args, DaemonContext context)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(context);
        var warnings = new List<string>();
        var flags = ReadFlags(args, context.ProgramName, warnings);
        var environment = ReadEnvironment(context.Environment, warnings);

        var raws = new List<RawValue>();
        raws.AddRange(ReadLegacyAppSettings(context.BaseDirectory, warnings));
        var configFile = ConfigFilePath(flags.Concat(environment).ToList());
        if (configFile is not null)
        {
            raws.AddRange(ReadConfigFile(configFile.Value.Path, configFile.Value.Origin, context.ProgramName));
        }

        raws.AddRange(environment.OrderBy(r => r.Group));
        raws.AddRange(flags);
        foreach (var set in Alternatives)
        {
            var given = raws.Where(r => set.Contains(r.Setting, StringComparer.Ordinal)).ToList();
            if (given.Count > 0)
            {
                var winner = given.Max(r => r.Group);
                raws.RemoveAll(r => r.Group < winner && set.Contains(r.Setting, StringComparer.Ordinal));
            }
        }

        var state = new LoadState<TOptions>(new TOptions());
        var origins = new Dictionary<string, SettingOrigin>(StringComparer.Ordinal);
        foreach (var row in _rows.Where(r => !r.IsConfigFile))
        {
            var values = raws.Where(r => r.Setting == row.Name).ToList();
            if (values.Count > 0)
            {
                origins[row.Name] = Apply(row, values, state);
            }
        }

        try
        {
            _validate(state.Options);
        }
        catch (ArgumentException ex)
        {
            var message = ex.ParamName is null ? ex.Message : ex.Message.Replace($" (Parameter '{ex.ParamName}')", string.Empty, StringComparison.Ordinal);
            var row = _rows.FirstOrDefault(r => r.Property == ex.ParamName);
            if (row is null)
            {
                throw new SettingException(message, ex);
            }

            var where = origins.TryGetValue(row.Name, out var origin)
                ? origin.ToString()
                : $"{row.Name} is the default; change it with {row.Flag}, {row.EnvironmentVariable} or JSON key {row.Name}";
            throw new SettingException(Sentence(message, where), ex) { Setting = row.Name };
        }

        return new DaemonConfiguration<TOptions>(state.Options, state.LogLevel, configFile?.Path, warnings.Distinct(StringComparer.Ordinal).ToList());
    }

    /// <summary>The --help text: how the names relate, then each setting with its flag, environment variable, JSON key and default.</summary>
    public string Usage(string programName)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"usage: {programName} [--config PATH] [--some-option VALUE ...]\n\n");
        text.Append("Settings come from flags, CP_ environment variables and a JSON file (--config); flags win over the\n");
        text.Append("environment, the environment over the file. Flag --some-option is variable CP_SOME_OPTION and JSON key\n");
        text.Append("SomeOption; nested keys use __ (--labels__team vision, CP_LABELS__TEAM=vision). Durations: 500ms, 30s, 5m, 1h30m, 00:00:30.\n\n");
        var width = _rows.Max(r => r.Flag.Length + r.ValueName.Length + 1) + 2;
        foreach (var row in _rows)
        {
            var flag = $"{row.Flag} {row.ValueName}";
            var json = row.IsConfigFile ? string.Empty : $", JSON {row.Name}";
            text.Append(CultureInfo.InvariantCulture, $"  {flag.PadRight(width)}{row.Help}\n");
            text.Append(CultureInfo.InvariantCulture, $"  {string.Empty.PadRight(width)}env {row.EnvironmentVariable}{json}; default: {row.Default}\n");
        }

        return text.ToString().TrimEnd('\n');
    }

    private static string Sentence(string message, string where) => $"{message.TrimEnd().TrimEnd('.')} ({where})";

    private static SettingOrigin Apply(DaemonSetting<TOptions> row, List<RawValue> values, LoadState<TOptions> state)
    {
        var origin = values[^1].Origin;
        try
        {
            switch (row.Shape)
            {
                case SettingShape.Scalar:
                    row.ApplyScalar!(state, values[^1].Value);
                    break;
                case SettingShape.List:
                    var group = values[^1].Group;
                    var items = values.Where(v => v.Group == group).ToList();
                    var list = items.Where(v => v.SubKey is null)
                        .SelectMany(v => v.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                        .Concat(items.Where(v => v.SubKey is not null).OrderBy(v => int.Parse(v.SubKey!, CultureInfo.InvariantCulture)).Select(v => v.Value.Trim()))
                        .ToList();
                    row.ApplyList!(state, list);
                    break;
                default:
                    var map = new Dictionary<string, string>(StringComparer.Ordinal);
                    foreach (var value in values)
                    {
                        origin = value.Origin;
                        if (value.SubKey is not null)
                        {
                            map[value.SubKey] = value.Value;
                            continue;
                        }

                        foreach (var pair in value.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                        {
                            var eq = pair.IndexOf('=', StringComparison.Ordinal);
                            if (eq <= 0)
                            {
                                throw new FormatException($"{row.Name} entry '{pair}' is not key=value; write e.g. team=vision,gpu=a100");
                            }

                            map[pair[..eq].Trim()] = pair[(eq + 1)..].Trim();
                        }
                    }

                    origin = values[^1].Origin;
                    row.ApplyMap!(state, map);
                    break;
            }
        }
        catch (FormatException ex)
        {
            throw new SettingException(Sentence(ex.Message, origin.ToString()), ex) { Setting = row.Name };
        }

        return origin;
    }
}
