using System.Runtime.InteropServices;

namespace ControlPlane.Cli.Internal;

/// <summary>
/// The first Ctrl+C (or SIGTERM) of a dev session: it fires <see cref="Token"/> and keeps the process alive so the run can
/// be cancelled cleanly. A second signal keeps the default action, so the process exits at once.
/// </summary>
internal sealed class DevInterrupt : IDisposable
{
    private readonly CancellationTokenSource _source;
    private readonly PosixSignalRegistration? _interrupt;
    private readonly PosixSignalRegistration? _terminate;
    private int _signals;

    /// <param name="handleSignals">Register for SIGINT and SIGTERM; false inside tests, where only <paramref name="caller"/> interrupts.</param>
    /// <param name="caller">Cancelling it counts as the first Ctrl+C.</param>
    public DevInterrupt(bool handleSignals, CancellationToken caller)
    {
        _source = CancellationTokenSource.CreateLinkedTokenSource(caller);
        if (handleSignals)
        {
            _interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
            _terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        }
    }

    public CancellationToken Token => _source.Token;

    public void Dispose()
    {
        _interrupt?.Dispose();
        _terminate?.Dispose();
        _source.Dispose();
    }

    private void OnSignal(PosixSignalContext context)
    {
        if (Interlocked.Increment(ref _signals) > 1)
        {
            return;
        }

        context.Cancel = true;

        // Cancellation callbacks do real work (printing, RPCs); keep them off the signal thread.
        ThreadPool.QueueUserWorkItem(static state =>
        {
            try
            {
                ((CancellationTokenSource)state!).Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The session already ended.
            }
        }, _source);
    }
}
