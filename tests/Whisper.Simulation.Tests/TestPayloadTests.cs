using Whisper.Protocol.Engine;
using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

public sealed class TestPayloadTests
{
    [Theory]
    [InlineData(MessageKind.Broadcast, -1, 10)]
    [InlineData(MessageKind.Broadcast, -1, 5000)]
    [InlineData(MessageKind.Private, 7, 300)]
    public void RoundTripsKeyKindAndRecipient(MessageKind kind, int recipient, int length)
    {
        var key = new MessageKey(3, 17);
        var payload = TestPayload.Create(key, kind, recipient, length);
        Assert.Equal(Math.Max(length, TestPayload.MinLength), payload.Length);
        Assert.True(TestPayload.TryParse(payload, out var parsedKey, out var parsedKind, out var parsedRecipient, out var problem));
        Assert.Null(problem);
        Assert.Equal(key, parsedKey);
        Assert.Equal(kind, parsedKind);
        Assert.Equal(recipient, parsedRecipient);
    }

    [Fact]
    public void DetectsACorruptedByte()
    {
        var payload = TestPayload.Create(new MessageKey(1, 2), MessageKind.Broadcast, -1, 2000);
        payload[1500] ^= 1;
        Assert.True(TestPayload.TryParse(payload, out _, out _, out _, out var problem));
        Assert.Contains("differs", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void DetectsATruncatedPayload()
    {
        var payload = TestPayload.Create(new MessageKey(1, 2), MessageKind.Broadcast, -1, 2000);
        Assert.True(TestPayload.TryParse(payload.AsSpan(0, 1200), out _, out _, out _, out var problem));
        Assert.Contains("1200 bytes", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void DetectsChunksOfTwoMessagesGluedTogether()
    {
        var a = TestPayload.Create(new MessageKey(1, 2), MessageKind.Broadcast, -1, 1000);
        var b = TestPayload.Create(new MessageKey(1, 3), MessageKind.Broadcast, -1, 1000);
        var glued = a.AsSpan(0, 500).ToArray().Concat(b.AsSpan(500).ToArray()).ToArray();
        Assert.True(TestPayload.TryParse(glued, out _, out _, out _, out var problem));
        Assert.NotNull(problem);
    }

    [Fact]
    public void RejectsBytesThatAreNotAWorkloadPayload()
    {
        Assert.False(TestPayload.TryParse("hello world"u8, out _, out _, out _, out var problem));
        Assert.NotNull(problem);
    }
}
