namespace ControlPlane.Hosting.Internal;

/// <summary>How a setting's raw values combine: one value, a list (comma-separated or indexed), or a map (k=v pairs or nested keys).</summary>
internal enum SettingShape
{
    Scalar,
    List,
    Map,
}
