using System.Text;
using Whisper.Protocol.Engine;
using Xunit;

namespace Whisper.Protocol.Tests.Engine;

public sealed class ChurnTests
{
    [Fact]
    public void A_newcomer_is_not_held_up_by_dependencies_on_a_member_that_left_before_it_came()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob", "carol");
        net.Broadcast("carol", "carol was here");
        net.RunFor(TimeSpan.FromMilliseconds(200));
        net["carol"].Engine.Leave(net.Now);
        net.Pump(net["carol"]);
        net.RunFor(TimeSpan.FromMilliseconds(500));

        net.Add("dave");
        net.RunUntil(() => net["dave"].Engine.State == EngineState.Joined, TimeSpan.FromSeconds(5));
        net.Broadcast("alice", "welcome dave"); // alice's clock still names carol's message

        net.RunFor(TimeSpan.FromMilliseconds(500));
        Assert.Equal(["b:alice:welcome dave"], net["dave"].Texts);
    }

    [Fact]
    public void Clocks_stay_small_however_many_members_come_and_go()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob");
        for (var i = 0; i < 40; i++)
        {
            var name = $"guest{i}";
            net.Add(name);
            net.RunUntil(() => net[name].Engine.State == EngineState.Joined, TimeSpan.FromSeconds(5));
            net.Broadcast(name, $"hello from {name}");
            net.Broadcast("alice", $"bye {name}");
            net.RunFor(TimeSpan.FromMilliseconds(100));
            net[name].Engine.Leave(net.Now);
            net.Pump(net[name]);
            net.RunFor(TimeSpan.FromMilliseconds(300));
        }

        net.RunFor(TimeSpan.FromSeconds(10));

        Assert.Equal(80, net["bob"].Delivered.Count(m => m.Kind == MessageKind.Broadcast));
        Assert.True(net["alice"].Engine.Clock.Count <= 3, $"alice's clock has {net["alice"].Engine.Clock.Count} entries");
        Assert.True(net["bob"].Engine.Members.Count <= 3, $"bob still lists {net["bob"].Engine.Members.Count} members");
        Assert.True(net.Broadcast("alice", "still small").IsAccepted);
    }

    [Fact]
    public void A_member_restarted_under_the_same_name_is_a_new_incarnation_whose_messages_are_never_confused_with_the_old()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob", "carol");
        net.Broadcast("carol", "first life");
        net.RunFor(TimeSpan.FromMilliseconds(200));
        var oldCarol = net["carol"];
        oldCarol.Crashed = true;
        net.RunFor(TimeSpan.FromSeconds(3)); // the others declare the old carol down

        var newCarol = net.Add("carol");
        net.RunUntil(() => newCarol.Engine.State == EngineState.Joined, TimeSpan.FromSeconds(5));
        net.Broadcast("carol", "second life"); // sequence 1 of the new incarnation, like "first life" was of the old
        net.RunFor(TimeSpan.FromMilliseconds(500));

        var atAlice = net["alice"].Delivered.Where(m => m.From.Name == "carol").ToList();
        Assert.Equal(["first life", "second life"], atAlice.Select(m => Encoding.UTF8.GetString(m.Payload)));
        Assert.NotEqual(atAlice[0].From.Id, atAlice[1].From.Id);
        Assert.Equal(atAlice[0].Id.Seq, atAlice[1].Id.Seq);
        Assert.Equal(["b:carol:second life"], newCarol.Texts);
    }

    [Fact]
    public void Memory_stays_bounded_when_members_keep_crashing_and_new_ones_keep_coming()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob");
        net.ServerUp = false; // guests join through bob: the group itself admits them and forgets the crashed
        var sizes = new List<int>();
        for (var i = 0; i < 30; i++)
        {
            var name = $"guest{i}";
            var guest = net.Add(name, net["bob"].Endpoint);
            net.RunUntil(() => guest.Engine.State == EngineState.Joined, TimeSpan.FromSeconds(5));
            net.Broadcast(name, $"hello from {name}");
            net.Broadcast("alice", $"welcome {name}");
            net.RunFor(TimeSpan.FromMilliseconds(100));
            guest.Crashed = true; // SIGKILL: no leave
            net.RunFor(TimeSpan.FromSeconds(3));
            var f = net["alice"].Engine.Footprint;
            Assert.Null(net["alice"].Engine.ReceivedMirrorDisagreement()); // the retired guests' slots are reused
            Assert.Null(net["bob"].Engine.ReceivedMirrorDisagreement());
            sizes.Add(f.Peers + f.Origins + f.DownProbes + f.Notices + f.Reservations + f.BufferedChunks);
        }

        net.RunFor(TimeSpan.FromSeconds(10));

        var end = net["alice"].Engine.Footprint;
        Assert.Equal(60, net["bob"].Delivered.Count(m => m.Kind == MessageKind.Broadcast));
        Assert.True(end.Peers <= 2 && end.Origins <= 3, $"alice still holds {end}");
        Assert.Equal(0, end.BufferedChunks);
        Assert.True(end.DownProbes <= 16, $"alice probes {end.DownProbes} departed members");
        // Probes of departed members grow to their cap of 16, then everything is flat however many more cycles come.
        Assert.True(sizes.Skip(20).All(size => size == sizes[^1]) && sizes.Max() <= 40, $"per-cycle footprint: {string.Join(',', sizes)}");
    }
}

