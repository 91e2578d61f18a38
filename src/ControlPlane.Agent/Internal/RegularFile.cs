using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ControlPlane.Agent.Internal;

/// <summary>
/// Reads a file a step names (its output, a checkpoint) when it is a regular file, and at most a bounded number of
/// bytes. A FIFO would block the open forever, a device or a growing file would never end, so the type is checked
/// before opening, the open cannot block (O_NONBLOCK), the opened handle is checked again (the path may have been
/// swapped in between), and the read stops one byte past the limit whatever the size said. Linux only.
/// </summary>
internal static partial class RegularFile
{
    private const int ENOENT = 2;
    private const int ENOTDIR = 20;
    private const int ENXIO = 6;
    private const int OReadOnly = 0;
    private const int ONoCtty = 0x100;
    private const int ONonBlock = 0x800;
    private const int OCloseOnExec = 0x80000;
    private const int AtFdCwd = -100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxType = 0x1;
    private const uint StatxSize = 0x200;

    // struct statx has one layout (native byte order) on every Linux architecture: stx_mode is a u16 at offset 28, stx_size a u64 at offset 40.
    private const int StatxBufferSize = 256;
    private const int StatxModeOffset = 28;
    private const int StatxSizeOffset = 40;
    private const int FileTypeMask = 0xF000;
    private const int RegularType = 0x8000;

    /// <summary>The outcome of <see cref="Read"/>.</summary>
    public enum Status
    {
        /// <summary>The bytes were read.</summary>
        Read,

        /// <summary>Nothing exists at the path.</summary>
        Missing,

        /// <summary>The path is not a regular file; <see cref="Result.Problem"/> says what it is.</summary>
        NotRegular,

        /// <summary>The file holds more than the limit.</summary>
        TooLarge,

        /// <summary>The file could not be read; <see cref="Result.Problem"/> says why.</summary>
        Failed,
    }

    /// <summary>What <see cref="Read"/> found: the bytes, or why there are none.</summary>
    public readonly record struct Result(Status Status, byte[] Data, string Problem, long Size);

    /// <summary>Reads the regular file at <paramref name="path"/> (links are followed) when it holds at most <paramref name="maxBytes"/>.</summary>
    public static Result Read(string path, int maxBytes)
    {
        // Checked before opening, so a device is never opened (opening some has side effects, e.g. a tape rewinds).
        var buffer = new byte[StatxBufferSize];
        if (Statx(AtFdCwd, path, 0, StatxType | StatxSize, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno is ENOENT or ENOTDIR
                ? new Result(Status.Missing, [], "no file", 0)
                : new Result(Status.Failed, [], Marshal.GetPInvokeErrorMessage(errno), 0);
        }

        if (Check(buffer, maxBytes) is { } early)
        {
            return early;
        }

        var fd = Open(path, OReadOnly | ONonBlock | ONoCtty | OCloseOnExec);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno switch
            {
                ENOENT or ENOTDIR => new Result(Status.Missing, [], "no file", 0),
                ENXIO => new Result(Status.NotRegular, [], "a socket", 0),
                _ => new Result(Status.Failed, [], Marshal.GetPInvokeErrorMessage(errno), 0),
            };
        }

        using var handle = new SafeFileHandle(fd, ownsHandle: true);

        // What was opened, not what the path named a moment ago.
        if (Statx(fd, string.Empty, AtEmptyPath, StatxType | StatxSize, buffer) != 0)
        {
            return new Result(Status.Failed, [], Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError()), 0);
        }

        if (Check(buffer, maxBytes) is { } late)
        {
            return late;
        }

        // One byte past the limit tells a file that grew after the size was read.
        var data = new byte[(int)Math.Min(SizeOf(buffer), maxBytes) + 1];
        var length = 0;
        while (length < data.Length)
        {
            var read = RandomAccess.Read(handle, data.AsSpan(length), length);
            if (read == 0)
            {
                break;
            }

            length += read;
        }

        return length > maxBytes
            ? new Result(Status.TooLarge, [], $"at least {length} bytes", length)
            : new Result(Status.Read, length == data.Length ? data : data[..length], string.Empty, length);
    }

    private static Result? Check(byte[] statx, int maxBytes)
    {
        var type = MemoryMarshal.Read<ushort>(statx.AsSpan(StatxModeOffset)) & FileTypeMask;
        if (type != RegularType)
        {
            return new Result(Status.NotRegular, [], Describe(type), 0);
        }

        var size = SizeOf(statx);
        return size > maxBytes ? new Result(Status.TooLarge, [], $"{size} bytes", size) : null;
    }

    private static long SizeOf(byte[] statx) => (long)MemoryMarshal.Read<ulong>(statx.AsSpan(StatxSizeOffset));

    private static string Describe(int type) => type switch
    {
        0x1000 => "a FIFO",
        0x2000 => "a character device",
        0x4000 => "a directory",
        0x6000 => "a block device",
        0xC000 => "a socket",
        _ => "not a regular file",
    };

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, [Out] byte[] buffer);
}
