using ControlPlane.Rpc.Internal;

namespace ControlPlane.Rpc.Tests;

public sealed class ProtocolEncodingTests
{
    [Theory]
    [InlineData("1H", 3600_000_000_0L)]
    [InlineData("2M", 1200_000_000L)]
    [InlineData("3S", 30_000_000L)]
    [InlineData("250m", 2_500_000L)]
    [InlineData("7u", 70L)]
    [InlineData("100n", 1L)]
    [InlineData("1n", 1L)]
    [InlineData("99999999S", 99_999_999L * 10_000_000L)]
    public void TryParseTimeout_ValidValue_ReturnsDuration(string value, long ticks)
    {
        Assert.True(GrpcTimeout.TryParse(value, out var timeout));
        Assert.Equal(TimeSpan.FromTicks(ticks), timeout);
    }

    [Theory]
    [InlineData("")]
    [InlineData("S")]
    [InlineData("10")]
    [InlineData("10s")]
    [InlineData("-1S")]
    [InlineData("123456789S")]
    [InlineData("1.5S")]
    [InlineData(" 1S")]
    public void TryParseTimeout_InvalidValue_ReturnsFalse(string value)
    {
        Assert.False(GrpcTimeout.TryParse(value, out _));
    }

    [Theory]
    [InlineData(0.001, "1000000n")]
    [InlineData(1, "1000000u")]
    [InlineData(120, "120000m")]
    [InlineData(200_000, "200000S")]
    public void FormatTimeout_Duration_UsesShortestUnitThatFits(double seconds, string expected)
    {
        Assert.Equal(expected, GrpcTimeout.Format(TimeSpan.FromSeconds(seconds)));
    }

    [Fact]
    public void FormatTimeout_NonPositive_ReturnsOneNanosecond()
    {
        Assert.Equal("1n", GrpcTimeout.Format(TimeSpan.Zero));
        Assert.Equal("1n", GrpcTimeout.Format(TimeSpan.FromSeconds(-5)));
    }

    [Fact]
    public void FormatTimeout_Huge_ClampsToMaximum()
    {
        Assert.Equal("99999999H", GrpcTimeout.Format(TimeSpan.MaxValue));
    }

    [Fact]
    public void FormatThenParse_ArbitraryDurations_NeverShortensTheTimeout()
    {
        foreach (var ticks in new long[] { 1, 9, 123_456_789, 98_765_432_109, 5_000_000_000_000 })
        {
            var original = TimeSpan.FromTicks(ticks);
            Assert.True(GrpcTimeout.TryParse(GrpcTimeout.Format(original), out var parsed));
            Assert.True(parsed >= original, $"{original} became {parsed}");
        }
    }

    [Theory]
    [InlineData("plain text", "plain text")]
    [InlineData("100%", "100%25")]
    [InlineData("line\nbreak", "line%0Abreak")]
    [InlineData("ünï", "%C3%BCn%C3%AF")]
    [InlineData("emoji 😀", "emoji %F0%9F%98%80")]
    public void PercentEncode_Message_EncodesNonPrintableAndPercent(string raw, string encoded)
    {
        Assert.Equal(encoded, PercentEncoding.Encode(raw));
        Assert.Equal(raw, PercentEncoding.Decode(encoded));
    }

    [Theory]
    [InlineData("50%", "50%")]
    [InlineData("%zz", "%zz")]
    [InlineData("%4", "%4")]
    [InlineData("a%41b", "aAb")]
    public void PercentDecode_MalformedSequence_KeptAsIs(string encoded, string decoded)
    {
        Assert.Equal(decoded, PercentEncoding.Decode(encoded));
    }

    [Theory]
    [InlineData("AAEC", new byte[] { 0, 1, 2 })]
    [InlineData("AAE", new byte[] { 0, 1 })]
    [InlineData("AAE=", new byte[] { 0, 1 })]
    [InlineData("AA", new byte[] { 0 })]
    [InlineData("AA==", new byte[] { 0 })]
    public void AddHeader_BinaryPaddedOrUnpadded_Decodes(string value, byte[] expected)
    {
        var metadata = new Metadata();

        MetadataHeaders.AddHeader(metadata, "x-data-bin", value);

        Assert.Equal(expected, metadata.GetValueBytes("x-data-bin"));
    }

    [Fact]
    public void AddHeader_CommaSeparatedBinary_AddsEachValue()
    {
        var metadata = new Metadata();

        MetadataHeaders.AddHeader(metadata, "x-data-bin", "AAE, AgM=");

        Assert.Equal(2, metadata.Count);
        Assert.Equal(new byte[] { 0, 1 }, metadata[0].ValueBytes);
        Assert.Equal(new byte[] { 2, 3 }, metadata[1].ValueBytes);
    }

    [Fact]
    public void AddHeader_InvalidBase64_ThrowsNamingHeader()
    {
        var ex = Assert.Throws<FormatException>(() => MetadataHeaders.AddHeader(new Metadata(), "x-data-bin", "!!!!"));
        Assert.Contains("x-data-bin", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(":path")]
    [InlineData("content-type")]
    [InlineData("te")]
    [InlineData("grpc-timeout")]
    [InlineData("grpc-encoding")]
    [InlineData("grpc-status")]
    public void AddHeader_ReservedHeader_IsFiltered(string key)
    {
        var metadata = new Metadata();

        MetadataHeaders.AddHeader(metadata, key, "x");

        Assert.Empty(metadata);
    }

    [Fact]
    public void EncodeValue_BinaryEntry_IsPaddedBase64()
    {
        Assert.Equal("AAE=", MetadataHeaders.EncodeValue(new Metadata.Entry("x-bin", new byte[] { 0, 1 })));
        Assert.Equal("v", MetadataHeaders.EncodeValue(new Metadata.Entry("x", "v")));
    }

    [Fact]
    public void MetadataAdd_InvalidKeysAndValues_ThrowWithFix()
    {
        var metadata = new Metadata();
        Assert.Contains("-bin", Assert.Throws<ArgumentException>(() => metadata.Add("x-data", new byte[] { 1 })).Message, StringComparison.Ordinal);
        Assert.Contains("bytes", Assert.Throws<ArgumentException>(() => metadata.Add("x-data-bin", "text")).Message, StringComparison.Ordinal);
        Assert.Contains("printable ASCII", Assert.Throws<ArgumentException>(() => metadata.Add("x-data", "ünï")).Message, StringComparison.Ordinal);
        Assert.Contains("may only contain", Assert.Throws<ArgumentException>(() => metadata.Add("x data", "v")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MetadataAdd_UpperCaseKey_IsLowerCased()
    {
        var metadata = new Metadata { { "X-Trace", "1" } };
        Assert.Equal("x-trace", metadata[0].Key);
        Assert.Equal("1", metadata.GetValue("x-trace"));
    }

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("Application/GRPC; charset=utf-8", true)]
    [InlineData("application/grpc+json", false)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void IsGrpcContentType_Value_MatchesSpec(string? value, bool expected)
    {
        Assert.Equal(expected, GrpcProtocol.IsGrpcContentType(value));
    }
}
