using Whisper.Protocol.Engine;
using Xunit;

namespace Whisper.Protocol.Tests.Engine;

public sealed class BoundedIdSetTests
{
    [Fact]
    public void Remembers_up_to_its_capacity_and_forgets_the_oldest_first()
    {
        var set = new BoundedIdSet(3);
        for (ulong i = 1; i <= 5; i++)
        {
            set.Add(new MemberId(i));
        }

        Assert.Equal(3, set.Count);
        Assert.False(set.Contains(new MemberId(1)));
        Assert.False(set.Contains(new MemberId(2)));
        Assert.True(set.Contains(new MemberId(3)));
        Assert.True(set.Contains(new MemberId(5)));
    }

    [Fact]
    public void Adding_an_id_twice_keeps_one_entry()
    {
        var set = new BoundedIdSet(2);
        set.Add(new MemberId(7));
        set.Add(new MemberId(7));
        set.Add(new MemberId(8));

        Assert.Equal(2, set.Count);
        Assert.True(set.Contains(new MemberId(7)));
    }
}
