using System.Text;
using Whisper.Protocol.Wire;
using Xunit;
using Xunit.Abstractions;

namespace Whisper.Protocol.Tests.Engine;

/// <summary>
/// Negative acks under steady loss (docs/protocol.md, "Retransmission"): a busy stream that keeps losing datagrams is
/// never free of gaps, so a new gap must not wait for the backed-off repeat of an older request.
/// </summary>
public sealed class GapRepairTests(ITestOutputHelper output)
{
    private static bool Carries(EngineHarness.Datagram d, string text, out ulong seq)
    {
        foreach (var frame in d.Frames)
        {
            if (frame is ChunkFrame c && c.Payload.Span.IndexOf(Encoding.UTF8.GetBytes(text)) >= 0)
            {
                seq = c.Seq;
                return true;
            }
        }

        seq = 0;
        return false;
    }

    [Fact]
    public void A_gap_that_opens_while_an_older_one_is_still_missing_is_asked_for_after_the_reorder_delay()
    {
        var net = new EngineHarness();
        net.Form("a", "b");
        net.RunFor(TimeSpan.FromSeconds(1));
        var a = net["a"].Endpoint;
        var b = net["b"].Endpoint;

        var stuckBlocked = true;
        var freshDropped = false;
        ulong freshSeq = 0;
        TimeSpan? revealedAt = null;
        var nacksNamingFresh = new List<TimeSpan>();
        net.Drop = d =>
        {
            if (d.From.Equals(a) && d.To.Equals(b))
            {
                if (stuckBlocked && Carries(d, "stuck", out _))
                {
                    return true; // every copy of this one is lost for a long while: its gap stays open
                }

                if (!freshDropped && Carries(d, "fresh", out freshSeq))
                {
                    freshDropped = true;
                    return true; // lost once
                }

                if (revealedAt is null && Carries(d, "after", out _))
                {
                    revealedAt = net.Now; // the harness delivers at once: b sees the new gap now
                }
            }

            if (d.From.Equals(b) && d.To.Equals(a) && freshDropped
                && d.Frames.OfType<NackFrame>().Any(n => n.Missing.Any(r => r.First <= freshSeq && freshSeq <= r.Last)))
            {
                nacksNamingFresh.Add(net.Now);
            }

            return false;
        };

        Assert.True(net.Broadcast("a", "stuck").IsAccepted);
        for (var i = 0; i < 40; i++)
        {
            Assert.True(net.Broadcast("a", $"m{i}").IsAccepted);
            net.RunFor(TimeSpan.FromMilliseconds(5)); // 200 ms: b's requests for "stuck" have backed off by now
        }

        Assert.True(net.Broadcast("a", "fresh").IsAccepted);
        net.RunFor(TimeSpan.FromMilliseconds(1));
        Assert.True(net.Broadcast("a", "after").IsAccepted);
        net.RunFor(TimeSpan.FromMilliseconds(20));

        Assert.NotNull(revealedAt);
        Assert.NotEmpty(nacksNamingFresh);
        var waited = nacksNamingFresh[0] - revealedAt.Value;
        output.WriteLine($"the new gap was asked for {waited.TotalMilliseconds} ms after it showed");
        // The reorder delay on this zero-delay network is its 1-ms floor; the backed-off repeat was tens of ms away.
        Assert.InRange(waited, TimeSpan.Zero, TimeSpan.FromMilliseconds(2));

        stuckBlocked = false;
        net.RunFor(TimeSpan.FromSeconds(2));
        var texts = net["b"].Texts;
        Assert.Equal(43, texts.Count);
        Assert.Equal("b:a:stuck", texts[0]); // held back every later one, as FIFO order asks
        Assert.Equal(["b:a:fresh", "b:a:after"], texts.TakeLast(2));
    }
}
