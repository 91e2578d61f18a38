using System.Runtime.InteropServices;

namespace ControlPlane.Hosting;

/// <summary>
/// Owns SIGTERM, SIGINT and SIGQUIT for a daemon process. The first signal fires <see cref="Install"/>'s token, which
/// starts the graceful shutdown; every later one, during or after shutdown, is absorbed. The registrations live as long
/// as the process, so no signal ever reaches a disposed handler or kills the process halfway through its shutdown.
/// </summary>
public static class DaemonSignals
{
    private static readonly Lock Gate = new();
    private static readonly CancellationTokenSource Stop = new();
    private static PosixSignalRegistration[]? _registrations;

    /// <summary>True once a signal has arrived.</summary>
    public static bool Received => Stop.IsCancellationRequested;

    /// <summary>Registers the handlers (once per process) and returns the token the first signal cancels.</summary>
    public static CancellationToken Install()
    {
        lock (Gate)
        {
            _registrations ??=
            [
                PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle),
                PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle),
                PosixSignalRegistration.Create(PosixSignal.SIGQUIT, Handle),
            ];
            return Stop.Token;
        }
    }

    private static void Handle(PosixSignalContext context)
    {
        // Never the default action (terminate): the host decides when the process ends, and exits 0 after a clean stop.
        context.Cancel = true;

        // Off the signal thread: a callback that throws while cancelling must not take the process down.
        _ = Task.Run(static () =>
        {
            try
            {
                Stop.Cancel();
            }
#pragma warning disable CA1031 // The stop has been requested; a failing callback is the host's to report, not the signal handler's.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        });
    }
}
