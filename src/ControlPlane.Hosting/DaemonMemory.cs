using System.Runtime.InteropServices;

namespace ControlPlane.Hosting;

/// <summary>
/// Keeps a long-running daemon's native memory from creeping up. glibc's malloc keeps memory freed by native code
/// (the JIT's work space, socket and TLS buffers) inside its arenas, one per thread that allocated under contention,
/// and returns it to the system only from the top of each arena: with the runtime's thread pool coming and going, the
/// freed holes pile up. In a soak with agents, replicas and Redis killed at random, a scheduler's anonymous memory grew
/// from 17 to 28 MiB in six minutes; one <c>malloc_trim(0)</c> gave 10.6 MiB of it back at once. Trimming every minute
/// costs a walk over the free lists, well under a millisecond at these sizes.
/// </summary>
public static partial class DaemonMemory
{
    /// <summary>How often <see cref="StartTrimming"/> hands freed native memory back.</summary>
    public static readonly TimeSpan TrimPeriod = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Hands memory that glibc's malloc holds free back to the system, now. False off Linux or on a C library without
    /// <c>malloc_trim</c> (musl), where there is nothing to do.
    /// </summary>
    public static bool TrimNativeHeap()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            // It answers 1 when it gave memory back and 0 when there was none to give: both are a trim done.
            _ = MallocTrim(0);
            return true;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
        catch (DllNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Trims every <paramref name="period"/> (default <see cref="TrimPeriod"/>) until disposed; a no-op where trimming is not available.</summary>
    public static IDisposable StartTrimming(TimeSpan? period = null, TimeProvider? time = null)
    {
        if (!TrimNativeHeap())
        {
            return NoTimer.Instance;
        }

        var every = period ?? TrimPeriod;
        return (time ?? TimeProvider.System).CreateTimer(static _ => TrimNativeHeap(), null, every, every);
    }

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    private sealed class NoTimer : IDisposable
    {
        public static readonly NoTimer Instance = new();

        public void Dispose()
        {
        }
    }
}
