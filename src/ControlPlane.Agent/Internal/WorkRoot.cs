namespace ControlPlane.Agent.Internal;

/// <summary>
/// The directory under which attempts get their work directories: created 0700 where missing, and refused when another
/// user could reach into it (world-writable, or not this user's), since steps' inputs, outputs and checkpoints live there.
/// </summary>
internal static class WorkRoot
{
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>
    /// The default root: systemd's StateDirectory when the agent runs as a unit that sets one, else the user's state
    /// directory ($XDG_STATE_HOME, or ~/.local/state) under controlplane/agent; each agent id gets its own.
    /// </summary>
    public static string Default(string agentId, Func<string, string?> variable)
    {
        if (variable("STATE_DIRECTORY") is { Length: > 0 } state)
        {
            return Path.Combine(state.Split(':')[0], agentId);
        }

        var xdg = variable("XDG_STATE_HOME");
        var home = variable("HOME") is { Length: > 0 } h ? h : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var stateHome = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg) ? xdg : Path.Combine(home, ".local", "state");
        return Path.Combine(stateHome, "controlplane", "agent", agentId);
    }

    /// <summary>Creates the root (0700, with any missing parents) and checks it is private; throws with how to fix it when not.</summary>
    public static void Prepare(string root)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(root);
            return;
        }

        var full = Path.GetFullPath(root);
        // Each missing level with the mode: CreateDirectory gives it to the last one only.
        var missing = new Stack<string>();
        for (var dir = full; !Directory.Exists(dir); dir = Path.GetDirectoryName(dir)!)
        {
            missing.Push(dir);
        }

        while (missing.TryPop(out var dir))
        {
            Directory.CreateDirectory(dir, Private);
        }

        var mode = File.GetUnixFileMode(full);
        if ((mode & UnixFileMode.OtherWrite) != 0)
        {
            throw new InvalidOperationException(
                $"WorkRoot '{full}' is world-writable (mode {Octal(mode)}): another user could replace a step's files; run 'chmod 700 {full}' or choose a directory of your own with --work-root.");
        }

        if (!OwnedByThisUser(full, mode))
        {
            throw new InvalidOperationException(
                $"WorkRoot '{full}' belongs to another user, who could read and change steps' files; choose a directory of your own with --work-root (the default is under ~/.local/state).");
        }

        // A parent anyone may write to without the sticky bit (unlike /tmp) lets another user swap the root itself.
        for (var parent = Path.GetDirectoryName(full); parent is not null; parent = Path.GetDirectoryName(parent))
        {
            var parentMode = File.GetUnixFileMode(parent);
            if ((parentMode & UnixFileMode.OtherWrite) != 0 && (parentMode & UnixFileMode.StickyBit) == 0)
            {
                throw new InvalidOperationException(
                    $"WorkRoot '{full}' lies under '{parent}', which is world-writable without the sticky bit (mode {Octal(parentMode)}): another user could replace the work root; choose a directory of your own with --work-root.");
            }
        }
    }

    /// <summary>Only the owner (or root) may change a file's mode: setting it to what it is tells whether this user owns it.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static bool OwnedByThisUser(string path, UnixFileMode mode)
    {
        try
        {
            File.SetUnixFileMode(path, mode);
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static string Octal(UnixFileMode mode) => Convert.ToString((int)mode, 8).PadLeft(4, '0');
}
