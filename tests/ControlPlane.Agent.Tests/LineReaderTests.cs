using System.Text;
using ControlPlane.Agent.Internal;

namespace ControlPlane.Agent.Tests;

public sealed class LineReaderTests
{
    [Fact]
    public async Task ReadLineAsync_LineThatNeverEnds_ReturnsCutLineAfterReadingABoundedAmount()
    {
        var endless = new EndlessStream((byte)'x');
        var reader = new LineReader(endless, 1000);

        var line = await reader.ReadLineAsync(CancellationToken.None);

        Assert.StartsWith(new string('x', 1000) + " [line cut at 1000 bytes", line, StringComparison.Ordinal);
        Assert.InRange(endless.BytesRead, 1001, 1000 + 8192);
    }

    [Fact]
    public async Task ReadLineAsync_CutInsideAMultiByteCharacter_CutsBeforeIt()
    {
        // 'é' is two bytes: with a 5-byte limit, "aaaa" fits and the 'é' straddling the limit is dropped whole.
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes("aaaaé tail\nnext\n"));
        var reader = new LineReader(stream, 5);

        var cut = await reader.ReadLineAsync(CancellationToken.None);
        var next = await reader.ReadLineAsync(CancellationToken.None);
        var end = await reader.ReadLineAsync(CancellationToken.None);

        Assert.StartsWith("aaaa [line cut at 5 bytes", cut, StringComparison.Ordinal);
        Assert.Equal("next", next);
        Assert.Null(end);
    }

    [Fact]
    public async Task ReadLineAsync_LineEnds_SameAsStreamReader()
    {
        const string text = "a\nb\r\nc\rd\n\ne";
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(text));
        var reader = new LineReader(stream, 100);
        using var expected = new StringReader(text);

        while (expected.ReadLine() is { } line)
        {
            Assert.Equal(line, await reader.ReadLineAsync(CancellationToken.None));
        }

        Assert.Null(await reader.ReadLineAsync(CancellationToken.None));
    }

    /// <summary>A stream of one byte repeated forever, counting what was read from it.</summary>
    private sealed class EndlessStream(byte value) : Stream
    {
        public long BytesRead { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            buffer.AsSpan(offset, count).Fill(value);
            BytesRead += count;
            return count;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
