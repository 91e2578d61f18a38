namespace ControlPlane.Cli.Internal;

/// <summary>Exit codes of cpctl, stable for scripts.</summary>
internal static class ExitCodes
{
    public const int Success = 0;

    /// <summary>The command failed: the scheduler refused it, could not be reached, or something else went wrong.</summary>
    public const int Failure = 1;

    /// <summary>The input was wrong: bad arguments, a bad pipeline file, or a spec the scheduler rejected as INVALID_ARGUMENT.</summary>
    public const int InvalidInput = 2;

    /// <summary>A waited-for or watched run ended in a state other than SUCCEEDED.</summary>
    public const int RunNotSucceeded = 3;

    /// <summary>Interrupted (Ctrl+C), as shells report SIGINT.</summary>
    public const int Interrupted = 130;
}
