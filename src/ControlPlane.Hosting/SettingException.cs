namespace ControlPlane.Hosting;

/// <summary>
/// A setting a daemon cannot start with. The message is one line: what is wrong and how to fix it, then where the value
/// came from, e.g. "Slots is 0; set it between 1 and 10000 (from flag --slots)".
/// </summary>
public sealed class SettingException : Exception
{
    /// <summary>The exit code a daemon returns for it.</summary>
    public const int ExitCode = 2;

    public SettingException()
    {
    }

    public SettingException(string message)
        : base(message)
    {
    }

    public SettingException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The setting at fault (its JSON key), when there is one.</summary>
    public string? Setting { get; init; }
}
