using System.Globalization;
using ControlPlane.Hosting.Internal;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Hosting;

/// <summary>
/// One row of a daemon's settings table. The name is the JSON key; the flag and the environment variable follow from it
/// (SomeOption: --some-option, CP_SOME_OPTION), so the three can never drift apart.
/// </summary>
/// <typeparam name="TOptions">The options class the value is applied to.</typeparam>
public sealed class DaemonSetting<TOptions>
{
    private DaemonSetting(string name, SettingShape shape, string valueName, string help, string defaultText, string? property)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        Shape = shape;
        ValueName = valueName;
        Help = help;
        Default = defaultText;
        Property = property ?? name;
        Flag = SettingNames.Flag(name);
        EnvironmentVariable = SettingNames.Environment(name);
    }

    /// <summary>The setting's name, which is also its JSON key, e.g. "LeaseDuration".</summary>
    public string Name { get; }

    /// <summary>The flag, e.g. "--lease-duration".</summary>
    public string Flag { get; }

    /// <summary>The environment variable, e.g. "CP_LEASE_DURATION".</summary>
    public string EnvironmentVariable { get; }

    /// <summary>What the value looks like in usage text, e.g. "DURATION" or "HOST:PORT".</summary>
    public string ValueName { get; }

    /// <summary>One sentence on what the setting does.</summary>
    public string Help { get; }

    /// <summary>The default, as a person reads it.</summary>
    public string Default { get; }

    /// <summary>The options property the value lands in; validation errors that name it are reported against this setting.</summary>
    public string Property { get; }

    /// <summary>True for the --config flag, which names the JSON file and so cannot be set inside it.</summary>
    public bool IsConfigFile { get; private init; }

    /// <summary>A true/false setting: as a flag, naming it alone means true.</summary>
    internal bool IsSwitch { get; private init; }

    internal SettingShape Shape { get; }

    internal Action<LoadState<TOptions>, string>? ApplyScalar { get; private init; }

    internal Action<LoadState<TOptions>, IReadOnlyList<string>>? ApplyList { get; private init; }

    internal Action<LoadState<TOptions>, IReadOnlyDictionary<string, string>>? ApplyMap { get; private init; }

#pragma warning disable CA1000 // The factories read as the table they build: DaemonSetting<AgentOptions>.Duration("LeaseDuration", ...).
    /// <summary>A free-text setting (an address, a path, an id); its options class validates the text.</summary>
    public static DaemonSetting<TOptions> Text(string name, string valueName, string help, string defaultText, Action<TOptions, string> apply, string? property = null)
    {
        ArgumentNullException.ThrowIfNull(apply);
        return new(name, SettingShape.Scalar, valueName, help, defaultText, property) { ApplyScalar = (state, raw) => apply(state.Options, raw) };
    }

    /// <summary>A whole number.</summary>
    public static DaemonSetting<TOptions> Number(string name, string help, string defaultText, Action<TOptions, int> apply, string? property = null)
    {
        ArgumentNullException.ThrowIfNull(apply);
        return new(name, SettingShape.Scalar, "N", help, defaultText, property)
        {
            ApplyScalar = (state, raw) => apply(
                state.Options,
                int.TryParse(raw.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
                    ? value
                    : throw new FormatException($"{name} '{raw}' is not a whole number; write it in digits, e.g. 8")),
        };
    }

    /// <summary>true or false; as a flag, naming it alone means true.</summary>
    public static DaemonSetting<TOptions> Boolean(string name, string help, string defaultText, Action<TOptions, bool> apply, string? property = null)
    {
        ArgumentNullException.ThrowIfNull(apply);
        return new(name, SettingShape.Scalar, "BOOL", help, defaultText, property)
        {
            IsSwitch = true,
            ApplyScalar = (state, raw) => apply(
                state.Options,
                bool.TryParse(raw.Trim(), out var value) ? value : throw new FormatException($"{name} '{raw}' is not true or false")),
        };
    }

    /// <summary>A duration: 500ms, 30s, 5m, 1h, 1h30m or 00:00:30.</summary>
    public static DaemonSetting<TOptions> Duration(string name, string help, string defaultText, Action<TOptions, TimeSpan> apply, string? property = null)
    {
        ArgumentNullException.ThrowIfNull(apply);
        return new(name, SettingShape.Scalar, "DURATION", help, defaultText, property)
        {
            ApplyScalar = (state, raw) => apply(
                state.Options,
                DaemonDuration.TryParse(raw, out var value)
                    ? value
                    : throw new FormatException($"{name} '{raw}' is not a duration; write e.g. {DaemonDuration.Examples}")),
        };
    }

    /// <summary>A list: comma-separated (a,b), a JSON array, or indexed (--queues__0 a, CP_QUEUES__0=a). A later source replaces the whole list.</summary>
    public static DaemonSetting<TOptions> List(string name, string valueName, string help, string defaultText, Action<TOptions, IReadOnlyList<string>> apply, string? property = null)
    {
        ArgumentNullException.ThrowIfNull(apply);
        return new(name, SettingShape.List, valueName, help, defaultText, property) { ApplyList = (state, values) => apply(state.Options, values) };
    }

    /// <summary>A map: k=v pairs, comma-separated (--labels a=1,b=2), a JSON object, or nested keys (--labels__a 1, CP_LABELS__A=1). Keys merge across sources.</summary>
    public static DaemonSetting<TOptions> Map(string name, string help, string defaultText, Action<TOptions, IReadOnlyDictionary<string, string>> apply, string? property = null)
    {
        ArgumentNullException.ThrowIfNull(apply);
        return new(name, SettingShape.Map, "k=v,...", help, defaultText, property) { ApplyMap = (state, values) => apply(state.Options, values) };
    }

#pragma warning restore CA1000

    /// <summary>The JSON settings file: --config PATH or CP_CONFIG.</summary>
    internal static DaemonSetting<TOptions> ConfigFile() =>
        new("Config", SettingShape.Scalar, "PATH", "JSON file with settings, keys as in the JSON column; a missing file is an error.", "none", property: null)
        {
            IsConfigFile = true,
            ApplyScalar = static (_, _) => { },
        };

    /// <summary>The log level, which every daemon has.</summary>
    internal static DaemonSetting<TOptions> LogLevelSetting() =>
        new("LogLevel", SettingShape.Scalar, "LEVEL", "Least severe log messages written (to stderr): Trace, Debug, Information, Warning, Error, Critical.", "Information", property: null)
        {
            ApplyScalar = static (state, raw) => state.LogLevel =
                Enum.TryParse<LogLevel>(raw.Trim(), ignoreCase: true, out var level) && Enum.IsDefined(level) && !int.TryParse(raw, CultureInfo.InvariantCulture, out _)
                    ? level
                    : throw new FormatException($"LogLevel '{raw}' is not a level; use Trace, Debug, Information, Warning, Error or Critical"),
        };
}
