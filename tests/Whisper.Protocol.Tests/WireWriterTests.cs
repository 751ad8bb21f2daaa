using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Protocol.Tests;

public sealed class WireWriterTests
{
    public static TheoryData<ulong> Values()
    {
        var data = new TheoryData<ulong> { 0, 1, ulong.MaxValue, ulong.MaxValue - 1 };
        for (var bits = 1; bits < 64; bits++)
        {
            var edge = 1UL << bits;
            data.Add(edge - 1);
            data.Add(edge);
            data.Add(edge + 1);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Values))]
    public void VarintSizeIsExactlyWhatWriteVarintWrites(ulong value)
    {
        var buffer = new byte[16];
        var w = new WireWriter(buffer);
        w.WriteVarint(value);

        Assert.Equal(w.Written, WireWriter.VarintSize(value));
    }
}
