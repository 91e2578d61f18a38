namespace ControlPlane.Hosting;

/// <summary>
/// A daemon's names from before the shared scheme. Each still works for one release, with a one-line warning on stderr
/// naming its replacement. Old keys are matched by options property name (or setting name), ignoring case.
/// </summary>
public sealed record DeprecatedNames
{
    /// <summary>The file next to the executable whose <see cref="AppSettingsSection"/> is read below the --config file.</summary>
    public const string AppSettingsFile = "appsettings.json";

    /// <summary>Section of appsettings.json holding the old settings, e.g. "Agent". Default is null: the file is not read.</summary>
    public string? AppSettingsSection { get; init; }

    /// <summary>Old environment prefix, e.g. "CP_AGENT__": CP_AGENT__SLOTS is read as CP_SLOTS. Default is null.</summary>
    public string? EnvironmentPrefix { get; init; }

    /// <summary>Old flag prefix, e.g. "--Agent:": --Agent:Slots is read as --slots. Default is null.</summary>
    public string? FlagPrefix { get; init; }

    /// <summary>Renamed flags: old flag to setting name, e.g. "--id" to "AgentId". Default is none.</summary>
    public IReadOnlyDictionary<string, string> Flags { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);
}
