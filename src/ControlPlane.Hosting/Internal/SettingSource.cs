namespace ControlPlane.Hosting.Internal;

/// <summary>The kinds of settings source, lowest precedence first.</summary>
internal enum SettingSource
{
    JsonFile,
    Environment,
    Flag,
}
