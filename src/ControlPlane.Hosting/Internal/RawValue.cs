namespace ControlPlane.Hosting.Internal;

/// <summary>
/// One value as a source gave it, before parsing: <paramref name="SubKey"/> is the part after "__" (a map key or a list
/// index), null for the value itself. <paramref name="Group"/> tells sources apart, so a later source's list replaces an earlier one's.
/// </summary>
internal sealed record RawValue(string Setting, string? SubKey, string Value, SettingOrigin Origin, int Group);
