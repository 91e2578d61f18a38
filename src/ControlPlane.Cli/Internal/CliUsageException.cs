namespace ControlPlane.Cli.Internal;

/// <summary>An argument or option value cpctl cannot use; reported as one line and exit code 2.</summary>
internal sealed class CliUsageException : Exception
{
    public CliUsageException(string message)
        : base(message)
    {
    }
}
