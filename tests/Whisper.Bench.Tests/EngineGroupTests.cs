using Whisper.Bench;
using Xunit;

namespace Whisper.Bench.Tests;

/// <summary>The in-memory group behind the engine micro-benchmark forms, and every broadcast reaches every other member once.</summary>
public sealed class EngineGroupTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(10)]
    public void EveryBroadcastIsDeliveredOnceAtEachOtherMember(int members)
    {
        var group = EngineGroup.Form(members);
        var payload = new byte[100];

        for (var i = 0; i < 500; i++)
        {
            group.Broadcast(payload);
        }

        Assert.Equal(500, group.Broadcasts);
        Assert.Equal(500L * (members - 1), group.Deliveries);
        Assert.InRange(group.Datagrams, 500L * (members - 1), 500L * (members - 1) * 2); // one per member, and some acks and heartbeats
    }

    [Fact]
    public void AGroupNeedsTwoMembers() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => EngineGroup.Form(1));
}
