using System.Globalization;
using System.Runtime.InteropServices;

namespace ControlPlane.Hosting.Tests;

public sealed class DaemonMemoryTests
{
    private const int Chunks = 64 * 1024;
    private const int ChunkBytes = 1024;

    [Fact]
    public void TrimNativeHeap_FreedChunksBelowALiveOne_GoBackToTheSystem()
    {
        Assert.True(OperatingSystem.IsLinux(), "the daemons ship for Linux; this test runs there");

        // 64 MiB of small native blocks, all freed but the last: free() alone cannot return them, the live block pins
        // the top of the heap they came from.
        var ones = Enumerable.Repeat((byte)1, ChunkBytes).ToArray();
        var blocks = new nint[Chunks];
        for (var i = 0; i < Chunks; i++)
        {
            blocks[i] = Marshal.AllocHGlobal(ChunkBytes);
            Marshal.Copy(ones, 0, blocks[i], ChunkBytes);
        }

        for (var i = 0; i < Chunks - 1; i++)
        {
            Marshal.FreeHGlobal(blocks[i]);
        }

        try
        {
            var freedButHeld = RssAnonKiB();

            Assert.True(DaemonMemory.TrimNativeHeap());

            var trimmed = RssAnonKiB();
            Assert.True(freedButHeld - trimmed > 32 * 1024, $"RssAnon {freedButHeld} KiB before the trim, {trimmed} KiB after: less than 32 MiB of the 64 MiB freed went back");
        }
        finally
        {
            Marshal.FreeHGlobal(blocks[Chunks - 1]);
        }
    }

    private static long RssAnonKiB()
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("RssAnon:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }
}
