using CsCheck;
using Whisper.Net;
using Whisper.Protocol;
using Whisper.Protocol.Engine;
using Xunit;

namespace Whisper.IntegrationTests.InProcess;

/// <summary>The history batch layout (docs/protocol.md, "Application payloads"): round trips, splits, and never throws on junk.</summary>
public sealed class HistoryBatchTests
{
    private static HistoryEntry Entry(ulong origin, ulong seq, string from, string text) =>
        new(new MessageId(MessageKind.Broadcast, new MemberId(origin), MemberId.None, seq), from, text, DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000 + (long)seq));

    [Fact]
    public void EntriesRoundTripInOrderWithTheirFlags()
    {
        var entries = new[] { Entry(7, 1, "alice", "hi"), Entry(9, 3, "bob", "héllo ✓"), Entry(7, 2, "alice", "") };

        var batch = Assert.Single(HistoryBatch.Encode(entries, late: true, 65_536));
        var decoded = new List<HistoryEntry>();

        Assert.True(HistoryBatch.TryDecode(batch, out var flags, decoded));
        Assert.Equal(HistoryBatch.LastFlag | HistoryBatch.LateFlag, flags);
        Assert.Equal(entries, decoded);
    }

    [Fact]
    public void ALongHistorySplitsIntoBatchesThatEachFitAndOnlyTheLastIsMarkedLast()
    {
        var entries = Enumerable.Range(1, 200).Select(i => Entry(5, (ulong)i, "carol", new string('x', 1000))).ToArray();

        var batches = HistoryBatch.Encode(entries, late: false, 16_384);
        var decoded = new List<HistoryEntry>();
        var all = new List<HistoryEntry>();
        for (var i = 0; i < batches.Count; i++)
        {
            Assert.True(batches[i].Length <= 16_384);
            Assert.True(HistoryBatch.TryDecode(batches[i], out var flags, decoded));
            Assert.Equal(i == batches.Count - 1 ? HistoryBatch.LastFlag : 0, flags);
            all.AddRange(decoded);
        }

        Assert.True(batches.Count > 10);
        Assert.Equal(entries, all);
    }

    [Fact]
    public void AnEmptyHistoryIsOneLastBatchWithNoEntries()
    {
        var batch = Assert.Single(HistoryBatch.Encode([], late: false, 65_536));
        var decoded = new List<HistoryEntry>();

        Assert.True(HistoryBatch.TryDecode(batch, out var flags, decoded));
        Assert.Equal(HistoryBatch.LastFlag, flags);
        Assert.Empty(decoded);
    }

    [Theory]
    [InlineData("")]
    [InlineData("02")]
    [InlineData("020400 00")] // unknown flag bit
    [InlineData("0201 0001")] // one entry announced, none present
    [InlineData("0201 0000 ff")] // trailing byte
    public void BrokenBatchesAreRefused(string hex)
    {
        var bytes = Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

        Assert.False(HistoryBatch.TryDecode(bytes, out _, []));
    }

    [Fact]
    public void ARenamedEntryBreakingTheNameRuleIsRefused()
    {
        var batch = HistoryBatch.Encode([Entry(1, 1, "alice", "x")], late: false, 1000)[0];
        batch[4 + 25] = (byte)'/'; // first byte of the name

        Assert.False(HistoryBatch.TryDecode(batch, out _, []));
    }

    [Fact]
    public void RandomBytesNeverThrow() =>
        Gen.Byte.Array[0, 300].Sample(bytes =>
        {
            if (bytes.Length > 0)
            {
                bytes[0] = AppPayload.HistoryBatch;
            }

            HistoryBatch.TryDecode(bytes, out _, []);
        }, iter: 20_000);

    [Fact]
    public void CorruptedGoodBatchesNeverThrow()
    {
        var good = HistoryBatch.Encode([Entry(3, 4, "dave", "some text"), Entry(3, 5, "dave", "more")], late: true, 1000)[0];
        Gen.Int[0, good.Length - 1].Select(Gen.Byte).Sample((at, value) =>
        {
            var copy = (byte[])good.Clone();
            copy[at] = value;
            HistoryBatch.TryDecode(copy, out _, []);
        }, iter: 20_000);
    }
}
