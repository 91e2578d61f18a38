namespace ControlPlane.Hosting.Internal;

/// <summary>Where a setting's value came from, as error messages name it: a flag, an environment variable, a JSON key in a file.</summary>
internal sealed record SettingOrigin(SettingSource Source, string Name, string? File = null)
{
    public static SettingOrigin Flag(string flag) => new(SettingSource.Flag, flag);

    public static SettingOrigin Environment(string variable) => new(SettingSource.Environment, variable);

    public static SettingOrigin Json(string key, string file) => new(SettingSource.JsonFile, key, file);

    public override string ToString() => Source switch
    {
        SettingSource.Flag => $"from flag {Name}",
        SettingSource.Environment => $"from environment {Name}",
        _ => $"from JSON key {Name} in {File}",
    };
}
