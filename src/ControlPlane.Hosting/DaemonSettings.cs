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
public sealed class DaemonSettings<TOptions>
    where TOptions : class, new()
{
    // Sources in precedence order; a list setting takes its items from the last source that has any.
    private const int LegacyJsonGroup = 0;
    private const int JsonGroup = 1;
    private const int LegacyEnvironmentGroup = 2;
    private const int EnvironmentGroup = 3;
    private const int FlagGroup = 4;

    private readonly DaemonSetting<TOptions>[] rows;
    private readonly Action<TOptions> validate;

    /// <param name="settings">The daemon's own settings; --config and --log-level are added for every daemon.</param>
    /// <param name="validate">Checks the options as a whole (ranges, settings that depend on each other).</param>
    /// <param name="deprecated">Old names still accepted, with a warning.</param>
    public DaemonSettings(IEnumerable<DaemonSetting<TOptions>> settings, Action<TOptions> validate, DeprecatedNames? deprecated = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(validate);
        rows = [DaemonSetting<TOptions>.ConfigFile(), .. settings, DaemonSetting<TOptions>.LogLevelSetting()];
        var duplicate = rows.GroupBy(r => r.Name, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"setting {duplicate.Key} is declared twice", nameof(settings));
        }

        this.validate = validate;
        Deprecated = deprecated ?? new DeprecatedNames();
    }

    /// <summary>Every setting in the order --help lists them: --config first, --log-level last.</summary>
    public IReadOnlyList<DaemonSetting<TOptions>> Settings => rows;

    /// <summary>The old names accepted with a warning.</summary>
    public DeprecatedNames Deprecated { get; }

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

        var state = new LoadState<TOptions>(new TOptions());
        var origins = new Dictionary<string, SettingOrigin>(StringComparer.Ordinal);
        foreach (var row in rows.Where(r => !r.IsConfigFile))
        {
            var values = raws.Where(r => r.Setting == row.Name).ToList();
            if (values.Count > 0)
            {
                origins[row.Name] = Apply(row, values, state);
            }
        }

        try
        {
            validate(state.Options);
        }
        catch (ArgumentException ex)
        {
            var message = ex.ParamName is null ? ex.Message : ex.Message.Replace($" (Parameter '{ex.ParamName}')", string.Empty, StringComparison.Ordinal);
            var row = rows.FirstOrDefault(r => r.Property == ex.ParamName);
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
        var width = rows.Max(r => r.Flag.Length + r.ValueName.Length + 1) + 2;
        foreach (var row in rows)
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

    private List<RawValue> ReadFlags(IReadOnlyList<string> args, string programName, List<string> warnings)
    {
        var raws = new List<RawValue>();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "--help" or "-h")
            {
                continue;
            }

            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
            {
                throw new SettingException($"unexpected argument '{arg}'; every setting is a flag with a value, e.g. {rows[1].Flag} {rows[1].ValueName} ({programName} --help lists them)");
            }

            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            var flag = eq > 0 ? arg[..eq] : arg;
            var (row, subKey, canonical) = ResolveFlag(flag, programName);
            if (canonical != flag)
            {
                warnings.Add($"{flag} is deprecated and will be removed in the next release; use {canonical}");
            }

            string value;
            if (eq > 0)
            {
                value = arg[(eq + 1)..];
            }
            else if (row.IsSwitch && (i + 1 >= args.Count || !bool.TryParse(args[i + 1], out _)))
            {
                value = "true";
            }
            else if (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                value = args[++i];
            }
            else
            {
                throw new SettingException($"{flag} needs a value, e.g. {flag} {row.ValueName}") { Setting = row.Name };
            }

            raws.Add(Checked(new RawValue(row.Name, subKey, value, SettingOrigin.Flag(flag), FlagGroup), row));
        }

        return raws;
    }

    // Returns the setting, the nested key, and the flag as the current scheme spells it (differs for a deprecated one).
    private (DaemonSetting<TOptions> Row, string? SubKey, string Canonical) ResolveFlag(string flag, string programName)
    {
        if (Deprecated.FlagPrefix is { } prefix && flag.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && flag.Length > prefix.Length)
        {
            var parts = flag[prefix.Length..].Split([":", SettingNames.NestedSeparator], StringSplitOptions.None);
            var legacy = LegacyRow(parts[0]) ?? throw UnknownFlag(flag, programName);
            var subKey = parts.Length > 1 ? string.Join(':', parts[1..]) : null;
            return (legacy, subKey, legacy.Flag + (subKey is null ? string.Empty : SettingNames.NestedSeparator + subKey.Replace(":", SettingNames.NestedSeparator, StringComparison.Ordinal)));
        }

        if (Deprecated.Flags.TryGetValue(flag, out var renamed))
        {
            var row = rows.First(r => r.Name == renamed);
            return (row, null, row.Flag);
        }

        var nested = flag.Split(SettingNames.NestedSeparator);
        var match = rows.FirstOrDefault(r => r.Flag.Equals(nested[0], StringComparison.OrdinalIgnoreCase)) ?? throw UnknownFlag(flag, programName);
        return (match, nested.Length > 1 ? string.Join(':', nested[1..]) : null, flag);
    }

    private SettingException UnknownFlag(string flag, string programName)
    {
        var closest = rows.Select(r => (r.Flag, Distance: Distance(flag.ToLowerInvariant(), r.Flag))).MinBy(c => c.Distance);
        var hint = closest.Distance <= 2 ? $"; did you mean {closest.Flag}?" : ";";
        return new SettingException($"unknown flag {flag}{hint} {programName} --help lists every flag");
    }

    private List<RawValue> ReadEnvironment(IReadOnlyDictionary<string, string> environment, List<string> warnings)
    {
        var raws = new List<RawValue>();
        foreach (var (name, value) in environment.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            // An empty variable counts as unset, so systemd's Environment=CP_X= clears a setting.
            if (string.IsNullOrEmpty(value))
            {
                continue;
            }

            if (Deprecated.EnvironmentPrefix is { } prefix && name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                var parts = name[prefix.Length..].Split(SettingNames.NestedSeparator);
                if (LegacyRow(parts[0]) is { } legacy)
                {
                    var subKey = parts.Length > 1 ? string.Join(':', parts[1..]).ToLowerInvariant() : null;
                    warnings.Add($"{name} is deprecated and will be removed in the next release; use {legacy.EnvironmentVariable}{(subKey is null ? string.Empty : SettingNames.NestedSeparator + subKey.Replace(":", SettingNames.NestedSeparator, StringComparison.Ordinal).ToUpperInvariant())}");
                    raws.Add(Checked(new RawValue(legacy.Name, subKey, value, SettingOrigin.Environment(name), LegacyEnvironmentGroup), legacy));
                }

                continue;
            }

            if (!name.StartsWith(SettingNames.EnvironmentPrefix, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            // Variable names are upper-case by convention, so nested keys (label names) are read lower-case.
            var nested = name.Split(SettingNames.NestedSeparator);
            var row = rows.FirstOrDefault(r => r.EnvironmentVariable.Equals(nested[0], StringComparison.OrdinalIgnoreCase));
            if (row is not null)
            {
                var subKey = nested.Length > 1 ? string.Join(':', nested[1..]).ToLowerInvariant() : null;
                raws.Add(Checked(new RawValue(row.Name, subKey, value, SettingOrigin.Environment(name), EnvironmentGroup), row));
            }
        }

        return raws;
    }

    private static (string Path, SettingOrigin Origin)? ConfigFilePath(List<RawValue> flagsAndEnvironment)
    {
        // Flags win over the environment here too.
        var named = flagsAndEnvironment.Where(r => r.Setting == "Config").OrderBy(r => r.Group).LastOrDefault();
        if (named is null)
        {
            return null;
        }

        var path = Path.GetFullPath(named.Value);
        if (!File.Exists(path))
        {
            throw new SettingException(Sentence($"Config file '{named.Value}' does not exist; give the path of a JSON settings file, or leave --config and CP_CONFIG unset", named.Origin.ToString()))
            {
                Setting = "Config",
            };
        }

        return (path, named.Origin);
    }

    private List<RawValue> ReadConfigFile(string path, SettingOrigin namedBy, string programName)
    {
        var raws = new List<RawValue>();
        IReadOnlyList<JsonSettingsFile.Entry> entries;
        try
        {
            entries = JsonSettingsFile.Flatten(JsonSettingsFile.ReadRoot(path), string.Empty, path);
        }
        catch (FormatException ex)
        {
            throw new SettingException(Sentence(ex.Message, namedBy.ToString()), ex) { Setting = "Config" };
        }

        foreach (var entry in entries)
        {
            var origin = SettingOrigin.Json(entry.Path, path);
            var row = rows.FirstOrDefault(r => r.Name.Equals(entry.Key, StringComparison.OrdinalIgnoreCase));
            if (row is null || row.IsConfigFile)
            {
                var known = string.Join(", ", rows.Where(r => !r.IsConfigFile).Select(r => r.Name));
                throw new SettingException(Sentence($"{entry.Key} is not a setting of {programName}; the keys are {known}", origin.ToString()));
            }

            raws.Add(Checked(new RawValue(row.Name, entry.SubKey, entry.Value, origin, JsonGroup), row));
        }

        return raws;
    }

    private List<RawValue> ReadLegacyAppSettings(string baseDirectory, List<string> warnings)
    {
        var raws = new List<RawValue>();
        var path = Path.Combine(baseDirectory, DeprecatedNames.AppSettingsFile);
        if (Deprecated.AppSettingsSection is not { } sectionName || !File.Exists(path))
        {
            return raws;
        }

        IReadOnlyList<JsonSettingsFile.Entry> entries;
        try
        {
            var root = JsonSettingsFile.ReadRoot(path);
            var section = root.EnumerateObject().FirstOrDefault(p => p.Name.Equals(sectionName, StringComparison.OrdinalIgnoreCase));
            if (section.Value.ValueKind != System.Text.Json.JsonValueKind.Object)
            {
                return raws;
            }

            entries = JsonSettingsFile.Flatten(section.Value, section.Name + ":", path);
        }
        catch (FormatException ex)
        {
            throw new SettingException(ex.Message, ex);
        }

        warnings.Add($"section \"{sectionName}\" of {path} is deprecated and will be read for one more release only; put its keys at the top level of a JSON file given with --config PATH or CP_CONFIG");

        // As before the shared scheme, keys this daemon does not know are ignored here.
        foreach (var entry in entries)
        {
            if (LegacyRow(entry.Key) is { } row)
            {
                raws.Add(Checked(new RawValue(row.Name, entry.SubKey, entry.Value, SettingOrigin.Json(entry.Path, path), LegacyJsonGroup), row));
            }
        }

        return raws;
    }

    private DaemonSetting<TOptions>? LegacyRow(string key) =>
        rows.FirstOrDefault(r => !r.IsConfigFile && (r.Property.Equals(key, StringComparison.OrdinalIgnoreCase) || r.Name.Equals(key, StringComparison.OrdinalIgnoreCase)));

    // A nested key only means something for a list (an index) or a map (a key).
    private static RawValue Checked(RawValue raw, DaemonSetting<TOptions> row)
    {
        if (raw.SubKey is null)
        {
            return raw;
        }

        var problem = row.Shape switch
        {
            SettingShape.Scalar => $"{row.Name} takes a single value, not nested keys; use {row.Flag} {row.ValueName}",
            SettingShape.List when !int.TryParse(raw.SubKey, NumberStyles.None, CultureInfo.InvariantCulture, out _) =>
                $"{row.Name} is a list; nested keys must be indexes (0, 1, ...), or give the items comma-separated: {row.Flag} a,b",
            SettingShape.Map when raw.SubKey.Length == 0 || raw.SubKey.Contains(':', StringComparison.Ordinal) =>
                $"{row.Name} keys nest one level, e.g. {row.Flag}__team vision",
            _ => null,
        };
        return problem is null ? raw : throw new SettingException(Sentence(problem, raw.Origin.ToString())) { Setting = row.Name };
    }

    private static int Distance(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var current = new int[b.Length + 1];
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }

            previous = current;
        }

        return previous[b.Length];
    }
}
