using ControlPlane.Internal;
using System.Globalization;
using ControlPlane.Hosting.Internal;

namespace ControlPlane.Hosting;

// The sources (flags, environment variables, the --config file, the deprecated appsettings.json section) read into raw values.
public sealed partial class DaemonSettings<TOptions>
{
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
                throw new SettingException($"unexpected argument '{arg}'; every setting is a flag with a value, e.g. {_rows[1].Flag} {_rows[1].ValueName} ({programName} --help lists them)");
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
            var row = _rows.First(r => r.Name == renamed);
            return (row, null, row.Flag);
        }

        var nested = flag.Split(SettingNames.NestedSeparator);
        var match = _rows.FirstOrDefault(r => r.Flag.Equals(nested[0], StringComparison.OrdinalIgnoreCase)) ?? throw UnknownFlag(flag, programName);
        return (match, nested.Length > 1 ? string.Join(':', nested[1..]) : null, flag);
    }

    private SettingException UnknownFlag(string flag, string programName)
    {
        var closest = _rows.Select(r => (r.Flag, Distance: EditDistance.Between(flag.ToLowerInvariant(), r.Flag))).MinBy(c => c.Distance);
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
            var row = _rows.FirstOrDefault(r => r.EnvironmentVariable.Equals(nested[0], StringComparison.OrdinalIgnoreCase));
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
            entries = JsonSettingsFile.Read(path);
        }
        catch (FormatException ex)
        {
            throw new SettingException(Sentence(ex.Message, namedBy.ToString()), ex) { Setting = "Config" };
        }

        foreach (var entry in entries)
        {
            var origin = SettingOrigin.Json(entry.Path, path);
            var row = _rows.FirstOrDefault(r => r.Name.Equals(entry.Key, StringComparison.OrdinalIgnoreCase));
            if (row is { IsConfigFile: true })
            {
                throw new SettingException(Sentence("Config cannot name a file from inside one; give the file with --config or CP_CONFIG only", origin.ToString()));
            }

            if (row is null)
            {
                var known = string.Join(", ", _rows.Where(r => !r.IsConfigFile).Select(r => r.Name));
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
            entries = JsonSettingsFile.Read(path, sectionName);
            if (entries.Count == 0)
            {
                return raws;
            }
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
        _rows.FirstOrDefault(r => !r.IsConfigFile && (r.Property.Equals(key, StringComparison.OrdinalIgnoreCase) || r.Name.Equals(key, StringComparison.OrdinalIgnoreCase)));

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
}
