namespace ControlPlane.InteropClient.Internal;

/// <summary>An interop assertion that did not hold; the message says what differed.</summary>
internal sealed class InteropFailureException : Exception
{
    public InteropFailureException()
    {
    }

    public InteropFailureException(string message)
        : base(message)
    {
    }

    public InteropFailureException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
