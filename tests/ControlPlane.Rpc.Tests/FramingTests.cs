using System.Buffers;
using System.IO.Compression;
using System.IO.Pipelines;
using ControlPlane.Rpc.Internal;
using ControlPlane.Rpc.Tests.Protos;
using Google.Protobuf;

namespace ControlPlane.Rpc.Tests;

public sealed class FramingTests
{
    private static readonly MessageParser<EchoRequest> Parser = EchoRequest.Parser;

    [Fact]
    public void WriteMessage_Uncompressed_WritesFlagLengthAndPayload()
    {
        var message = new EchoRequest { Text = "hello" };
        var output = new ArrayBufferWriter<byte>();

        MessageFraming.WriteMessage(output, message, compress: false, CompressionLevel.Fastest, maxSendSize: null);

        Assert.Equal(ProtocolFrames.Frame(message), output.WrittenSpan.ToArray());
    }

    [Fact]
    public async Task WriteMessage_Compressed_RoundTripsThroughReader()
    {
        var message = new EchoRequest { Text = new string('a', 1000) };
        var output = new ArrayBufferWriter<byte>();

        MessageFraming.WriteMessage(output, message, compress: true, CompressionLevel.Fastest, maxSendSize: null);

        Assert.Equal(1, output.WrittenSpan[0]);
        Assert.True(output.WrittenCount < 1000, "gzip should shrink a repetitive payload");
        var read = await ReadAsync(output.WrittenSpan.ToArray(), "gzip");
        Assert.Equal(message, read);
    }

    [Fact]
    public void WriteMessage_OverSendLimit_ThrowsResourceExhausted()
    {
        var output = new ArrayBufferWriter<byte>();

        var ex = Assert.Throws<RpcException>(() => MessageFraming.WriteMessage(output, new EchoRequest { Text = new string('x', 100) }, false, CompressionLevel.Fastest, 10));

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Equal(0, output.WrittenCount);
    }

    [Fact]
    public async Task ReadMessageAsync_SeveralFramesInOneBuffer_ReadsEachThenNull()
    {
        var data = ProtocolFrames.Concat(ProtocolFrames.Frame(new EchoRequest { Text = "1" }), ProtocolFrames.Frame(new EchoRequest { Text = "2" }));
        var reader = PipeReader.Create(new ReadOnlySequence<byte>(data));

        var first = await MessageFraming.ReadMessageAsync(reader, Parser, 1024, null, default);
        var second = await MessageFraming.ReadMessageAsync(reader, Parser, 1024, null, default);
        var end = await MessageFraming.ReadMessageAsync(reader, Parser, 1024, null, default);

        Assert.Equal("1", first!.Text);
        Assert.Equal("2", second!.Text);
        Assert.Null(end);
    }

    [Fact]
    public async Task ReadMessageAsync_FrameSplitAcrossWrites_ReassemblesIt()
    {
        var frame = ProtocolFrames.Frame(new EchoRequest { Text = "split across writes" });
        var pipe = new Pipe();

        var readTask = MessageFraming.ReadMessageAsync(pipe.Reader, Parser, 1024, null, default).AsTask();
        foreach (var b in frame)
        {
            await pipe.Writer.WriteAsync(new[] { b });
        }

        await pipe.Writer.CompleteAsync();
        Assert.Equal("split across writes", (await readTask.WaitAsync(ServerTestHost.Timeout))!.Text);
    }

    [Fact]
    public async Task ReadMessageAsync_TruncatedFrame_ThrowsInternal()
    {
        var frame = ProtocolFrames.Frame(new EchoRequest { Text = "truncated" });

        var ex = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(frame[..^3], null));

        Assert.Equal(StatusCode.Internal, ex.StatusCode);
    }

    [Fact]
    public async Task ReadMessageAsync_TruncatedHeader_ThrowsInternal()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(new byte[] { 0, 0, 0 }, null));

        Assert.Equal(StatusCode.Internal, ex.StatusCode);
    }

    [Fact]
    public async Task ReadMessageAsync_LengthBeyondLimit_ThrowsResourceExhaustedBeforePayloadArrives()
    {
        var header = ProtocolFrames.Frame(Array.Empty<byte>(), 0, 5000);

        var ex = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(header, null, maxSize: 4096));

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Contains("4096", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadMessageAsync_CompressedFlagWithoutEncoding_ThrowsInternal()
    {
        var frame = ProtocolFrames.GzipFrame(new EchoRequest { Text = "x" });

        var ex = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(frame, null));

        Assert.Equal(StatusCode.Internal, ex.StatusCode);
        Assert.Contains("grpc-encoding", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadMessageAsync_CompressedFlagWithUnknownEncoding_ThrowsInternal()
    {
        var frame = ProtocolFrames.GzipFrame(new EchoRequest { Text = "x" });

        var ex = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(frame, "snappy"));

        Assert.Equal(StatusCode.Internal, ex.StatusCode);
    }

    [Fact]
    public async Task ReadMessageAsync_InvalidFlag_ThrowsInternal()
    {
        var frame = ProtocolFrames.Frame(new byte[] { 1 }, 7, -1);

        var ex = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(frame, null));

        Assert.Equal(StatusCode.Internal, ex.StatusCode);
    }

    [Fact]
    public async Task ReadMessageAsync_DecompressedBeyondLimit_ThrowsResourceExhausted()
    {
        // 64 KiB of zeros gzip to a few hundred bytes: the wire size passes, the real size does not.
        var frame = ProtocolFrames.Frame(ProtocolFrames.Gzip(new EchoRequest { Payload = ByteString.CopyFrom(new byte[65536]) }.ToByteArray()), 1, -1);
        Assert.True(frame.Length < 4096);

        var ex = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(frame, "gzip", maxSize: 4096));

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
    }

    [Fact]
    public async Task ReadMessageAsync_InvalidGzip_ThrowsInternal()
    {
        var frame = ProtocolFrames.Frame(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, 1, -1);

        var ex = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(frame, "gzip"));

        Assert.Equal(StatusCode.Internal, ex.StatusCode);
    }

    [Fact]
    public async Task ReadMessageAsync_MalformedProtobuf_ThrowsInternal()
    {
        // Field 1, wire type 2 (length-delimited), claiming 100 bytes that are not there.
        var frame = ProtocolFrames.Frame(new byte[] { 0x0A, 100, 1, 2 }, 0, -1);

        var ex = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(frame, null));

        Assert.Equal(StatusCode.Internal, ex.StatusCode);
    }

    [Fact]
    public async Task ReadMessageAsync_EmptyMessage_ReadsDefaultInstance()
    {
        var read = await ReadAsync(ProtocolFrames.Frame(Array.Empty<byte>(), 0, -1), null);

        Assert.Equal(new EchoRequest(), read);
    }

    private static async Task<EchoRequest?> ReadAsync(byte[] data, string? encoding, int maxSize = 1024 * 1024)
    {
        var reader = PipeReader.Create(new ReadOnlySequence<byte>(data));
        return await MessageFraming.ReadMessageAsync(reader, Parser, maxSize, encoding, default);
    }
}
