using System.Text;
using Whisper.Protocol;
using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Protocol.Tests.Engine;

public sealed class WhisperEngineTests
{
    private static bool Carries(EngineHarness.Datagram d, string text) =>
        d.Frames.Any(f => f switch
        {
            ChunkFrame c => Encoding.UTF8.GetString(c.Payload.Span) == text,
            PrivateChunkFrame p => Encoding.UTF8.GetString(p.Payload.Span) == text,
            _ => false,
        });

    [Fact]
    public void A_broadcast_is_delivered_exactly_once_to_every_member_including_the_sender()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob", "carol");

        Assert.True(net.Broadcast("alice", "hello").IsAccepted);
        net.RunFor(TimeSpan.FromSeconds(1));

        foreach (var n in net.Nodes)
        {
            Assert.Equal(["b:alice:hello"], n.Texts);
        }
    }

    [Fact]
    public void A_member_that_learns_of_a_newcomer_late_sends_it_what_it_said_that_not_everyone_has_acknowledged()
    {
        // Members learn of a newcomer at different moments; what a member said after the newcomer was admitted but
        // before it learned of it must still reach the newcomer. Here m2 never acknowledges, so m1 still holds it.
        var net = new EngineHarness();
        net.Form("m1", "m2");
        var (m1, m2) = (net["m1"], net["m2"]);
        net.Drop = d => d.From.Equals(m2.Endpoint) && d.To.Equals(m1.Endpoint) && d.Frames.Any(static f => f is AckFrame);
        net.Broadcast("m1", "not yet acknowledged by everyone");
        net.RunFor(TimeSpan.FromMilliseconds(100));
        Assert.Contains("b:m1:not yet acknowledged by everyone", m2.Texts);

        var m3 = net.Add("m3");
        net.RunUntil(() => m3.Texts.Contains("b:m1:not yet acknowledged by everyone"), TimeSpan.FromSeconds(3));
        net.Broadcast("m1", "after m3 joined");
        net.RunUntil(() => m3.Texts.Contains("b:m1:after m3 joined"), TimeSpan.FromSeconds(3));

        Assert.Equal(["b:m1:not yet acknowledged by everyone", "b:m1:after m3 joined"], m3.Texts.Where(t => t.StartsWith("b:m1:", StringComparison.Ordinal)));
    }

    [Fact]
    public void Every_member_reports_the_same_group_once_joined()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob", "carol");

        foreach (var n in net.Nodes)
        {
            var names = n.Engine.Members.Select(m => m.Member.Name).Order().ToArray();
            Assert.Equal(["alice", "bob", "carol"], names);
            Assert.All(n.Engine.Members, m => Assert.Equal(MemberStatus.Up, m.Status));
        }
    }

    [Fact]
    public void A_reply_is_held_back_until_the_message_it_answers_has_been_delivered()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob", "carol");
        var carol = net["carol"].Endpoint;
        var alice = net["alice"].Endpoint;
        var blockQuestion = true;
        net.Drop = d => blockQuestion && d.To.Equals(carol) && d.From.Equals(alice) && Carries(d, "question");

        net.Broadcast("alice", "question");
        net.Flush();
        Assert.Contains("b:alice:question", net["bob"].Texts);
        net.Broadcast("bob", "answer");
        net.Flush();

        Assert.DoesNotContain("b:bob:answer", net["carol"].Texts); // held back: its predecessor is missing
        Assert.Equal(1, net["carol"].Engine.Stats.HeldBack);

        blockQuestion = false;
        net.RunFor(TimeSpan.FromSeconds(1));
        Assert.Equal(["b:alice:question", "b:bob:answer"], net["carol"].Texts);
    }

    [Fact]
    public void A_private_message_is_delivered_after_every_broadcast_its_sender_had_seen()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob", "carol");
        var bob = net["bob"].Endpoint;
        var carol = net["carol"].Endpoint;
        var block = true;
        net.Drop = d => block && d.To.Equals(bob) && d.From.Equals(carol) && Carries(d, "meeting moved to 5");

        net.Broadcast("carol", "meeting moved to 5");
        net.Flush();
        net.Private("alice", "bob", "see above");
        net.Flush();
        Assert.DoesNotContain("p:alice:see above", net["bob"].Texts);

        block = false;
        net.RunFor(TimeSpan.FromSeconds(1));
        Assert.Equal(["b:carol:meeting moved to 5", "p:alice:see above"], net["bob"].Texts);
        Assert.DoesNotContain(net["carol"].Texts, t => t.StartsWith("p:", StringComparison.Ordinal));
        Assert.DoesNotContain(net["alice"].Texts, t => t.StartsWith("p:", StringComparison.Ordinal));
    }

    [Fact]
    public void Private_messages_arrive_in_sending_order_despite_loss_of_the_first()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob");
        var dropFirst = true;
        net.Drop = d =>
        {
            if (dropFirst && Carries(d, "p1"))
            {
                dropFirst = false;
                return true;
            }

            return false;
        };

        for (var i = 1; i <= 5; i++)
        {
            Assert.True(net.Private("alice", "bob", $"p{i}").IsAccepted);
        }

        net.RunFor(TimeSpan.FromSeconds(1));
        Assert.Equal(["p:alice:p1", "p:alice:p2", "p:alice:p3", "p:alice:p4", "p:alice:p5"], net["bob"].Texts);
    }

    [Fact]
    public void Members_supply_a_crashed_senders_broadcast_to_those_it_did_not_reach()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob", "carol");
        var alice = net["alice"];
        var carol = net["carol"].Endpoint;
        net.Drop = d => d.From.Equals(alice.Endpoint) && d.To.Equals(carol); // alice only reaches bob

        net.Broadcast("alice", "last words");
        net.Flush();
        alice.Crashed = true;
        net.RunFor(TimeSpan.FromSeconds(2));

        Assert.Equal(["b:alice:last words"], net["bob"].Texts);
        Assert.Equal(["b:alice:last words"], net["carol"].Texts);
        Assert.True(net["bob"].Engine.Stats.ChunksRelayed > 0);
    }

    [Fact]
    public void Duplicated_datagrams_never_duplicate_a_delivery()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob");
        var captured = new List<EngineHarness.Datagram>();
        net.Drop = d =>
        {
            captured.Add(d);
            return false;
        };

        net.Broadcast("alice", "once");
        net.Private("alice", "bob", "only once");
        net.Flush();
        foreach (var d in captured.ToList())
        {
            net.NodeAt(d.To)?.Engine.OnDatagram(d.From, d.Bytes, net.Now);
            if (net.NodeAt(d.To) is { } n)
            {
                net.Pump(n);
            }
        }

        net.RunFor(TimeSpan.FromSeconds(1));
        Assert.Equal(["b:alice:once", "p:alice:only once"], net["bob"].Texts);
        Assert.True(net["bob"].Engine.Stats.DuplicateChunks >= 2);
    }

    [Fact]
    public void A_64_KiB_message_is_fragmented_into_small_datagrams_and_reassembled()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob");
        var text = string.Concat(Enumerable.Range(0, 64 * 1024).Select(i => (char)('a' + (i % 26))));
        var sizes = new List<int>();
        net.Drop = d =>
        {
            sizes.Add(d.Bytes.Length);
            return false;
        };

        Assert.True(net.Broadcast("alice", text).IsAccepted);
        net.RunFor(TimeSpan.FromSeconds(1));

        Assert.Equal(text, Encoding.UTF8.GetString(net["bob"].Delivered.Single().Payload));
        Assert.All(sizes, s => Assert.True(s <= WireCodec.MaxDatagramSize));
        Assert.True(sizes.Count > 55);
    }

    [Fact]
    public void A_message_over_64_KiB_is_refused_at_the_sender()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob");

        var result = net["alice"].Engine.Broadcast(new byte[(64 * 1024) + 1], net.Now);
        var priv = net["alice"].Engine.SendPrivate("bob", new byte[(64 * 1024) + 1], net.Now);

        Assert.Equal(SendStatus.TooLarge, result.Status);
        Assert.Equal(SendStatus.TooLarge, priv.Status);
    }

    [Fact]
    public void A_private_message_to_a_name_not_in_the_group_is_refused()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob");

        Assert.Equal(SendStatus.UnknownRecipient, net.Private("alice", "mallory", "hi").Status);
        Assert.Equal(SendStatus.UnknownRecipient, net.Private("alice", "alice", "hi").Status);
    }

    [Fact]
    public void The_send_window_applies_back_pressure_until_members_acknowledge()
    {
        var options = new EngineOptions { SendWindowChunks = 128, ReceiveWindowChunks = 256 };
        var net = new EngineHarness(options);
        net.Form("alice", "bob");
        var bob = net["bob"].Endpoint;
        var cut = true;
        net.Drop = d => cut && (d.To.Equals(bob) || d.From.Equals(bob));

        var accepted = 0;
        SendResult last = default;
        for (var i = 0; i < 200; i++)
        {
            last = net.Broadcast("alice", $"m{i}");
            if (!last.IsAccepted)
            {
                break;
            }

            accepted++;
        }

        Assert.Equal(SendStatus.WindowFull, last.Status);
        Assert.Equal(128, accepted);

        cut = false;
        net.RunUntil(() => net["bob"].Delivered.Count == 128, TimeSpan.FromSeconds(5));
        net.RunFor(TimeSpan.FromMilliseconds(300));
        Assert.True(net.Broadcast("alice", "after").IsAccepted);
    }

    [Fact]
    public void Acknowledged_chunks_are_released_so_memory_stays_bounded()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob", "carol");
        for (var i = 0; i < 300; i++)
        {
            net.Broadcast(net.Nodes[i % 3].Name, $"m{i}");
        }

        net.RunFor(TimeSpan.FromSeconds(1));
        foreach (var n in net.Nodes)
        {
            Assert.Equal(300, n.Delivered.Count);
            Assert.Equal(0, n.Engine.Stats.StoredChunks);
        }
    }

    [Fact]
    public void Malformed_datagrams_are_counted_and_dropped_without_throwing()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob");
        var bob = net["bob"].Engine;
        var rng = new Random(42);
        for (var i = 0; i < 1000; i++)
        {
            var junk = new byte[rng.Next(0, 1400)];
            rng.NextBytes(junk);
            if (junk.Length > 3 && i % 2 == 0)
            {
                junk[0] = WireCodec.Magic0;
                junk[1] = WireCodec.Magic1;
                junk[2] = WireCodec.Version;
                junk[3] = 0;
            }

            bob.OnDatagram(net["alice"].Endpoint, junk, net.Now);
        }

        net.Pump(net["bob"]);
        Assert.True(bob.Stats.MalformedDropped + bob.Stats.ForeignDropped >= 990);
        net.Broadcast("alice", "still fine");
        net.RunFor(TimeSpan.FromMilliseconds(200));
        Assert.Equal(["b:alice:still fine"], net["bob"].Texts);
    }

    [Fact]
    public void A_join_with_no_server_answering_ends_as_unreachable_after_bounded_retries()
    {
        var net = new EngineHarness { ServerUp = false };
        var node = net.Add("alice");

        net.RunFor(TimeSpan.FromSeconds(10));

        var denied = Assert.Single(node.Events.OfType<DeniedEvent>());
        Assert.Equal(DenyReason.Unreachable, denied.Reason);
        Assert.Equal(EngineState.Denied, node.Engine.State);
        Assert.Null(node.Engine.NextTimeout);
    }

    [Fact]
    public void A_graceful_leave_is_reported_as_left_and_its_last_message_still_arrives()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob", "carol");

        net.Broadcast("alice", "bye all");
        net["alice"].Engine.Leave(net.Now);
        net.Pump(net["alice"]);
        net.RunFor(TimeSpan.FromSeconds(1));

        Assert.Contains(net["alice"].Events, e => e is LeftEvent);
        foreach (var name in new[] { "bob", "carol" })
        {
            Assert.Equal(["b:alice:bye all"], net[name].Texts);
            Assert.Contains(net[name].Events, e => e is MemberStatusEvent { Status: MemberStatus.Left } s && s.Member.Name == "alice");
        }
    }

    [Fact]
    public void A_leave_with_nothing_unacknowledged_is_sent_three_times_so_a_lost_copy_still_ends_as_left()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob");
        net.RunFor(TimeSpan.FromMilliseconds(100)); // everything alice said is acknowledged
        var bobEndpoint = net["bob"].Endpoint;
        var leaves = 0;
        net.Drop = d => d.To.Equals(bobEndpoint) && d.Frames.Any(static f => f is LeaveFrame) && ++leaves == 1; // the first copy is lost

        net["alice"].Engine.Leave(net.Now);
        net.Pump(net["alice"]);
        net.RunFor(TimeSpan.FromSeconds(1));

        Assert.Equal(3, leaves);
        Assert.Contains(net["alice"].Events, e => e is LeftEvent);
        var statuses = net["bob"].Events.OfType<MemberStatusEvent>().Where(e => e.Member.Name == "alice").Select(e => e.Status).ToArray();
        Assert.Equal([MemberStatus.Left], statuses.Where(s => s != MemberStatus.Up));
    }

    [Fact]
    public void A_silent_member_is_reported_suspect_then_down()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob", "carol");

        var before = net["alice"].Events.Count;
        net["carol"].Crashed = true;
        net.RunFor(TimeSpan.FromSeconds(3));

        var statuses = net["alice"].Events.Skip(before).OfType<MemberStatusEvent>().Where(e => e.Member.Name == "carol").Select(e => e.Status).ToArray();
        Assert.Equal([MemberStatus.Suspect, MemberStatus.Down], statuses);
    }

    [Fact]
    public void A_newcomer_delivers_only_broadcasts_sent_after_it_joined_and_never_waits_for_older_ones()
    {
        var net = new EngineHarness();
        net.Form("alice", "bob");
        net.Broadcast("alice", "before");
        net.RunFor(TimeSpan.FromMilliseconds(100));

        net.Add("carol");
        net.RunUntil(() => net["carol"].Engine.State == EngineState.Joined, TimeSpan.FromSeconds(5));
        net.Broadcast("bob", "after"); // bob had delivered "before": carol must not wait for it
        net.RunFor(TimeSpan.FromMilliseconds(500));

        Assert.Equal(["b:bob:after"], net["carol"].Texts);
    }

    [Fact]
    public void The_same_inputs_produce_the_same_datagrams()
    {
        static string Run()
        {
            var net = new EngineHarness();
            var trace = new StringBuilder();
            net.Form("alice", "bob", "carol");
            foreach (var n in net.Nodes)
            {
                n.Engine.Tracer = (t, line) => trace.Append(t.Ticks).Append(' ').AppendLine(line);
            }

            var i = 0;
            net.Drop = _ => ++i % 7 == 0;
            for (var k = 0; k < 20; k++)
            {
                net.Broadcast(net.Nodes[k % 3].Name, $"m{k}");
                net.Private(net.Nodes[k % 3].Name, net.Nodes[(k + 1) % 3].Name, $"p{k}");
            }

            net.RunFor(TimeSpan.FromSeconds(2));
            return trace.ToString();
        }

        var first = Run();
        Assert.Equal(first, Run());
        Assert.NotEmpty(first);
    }
}
