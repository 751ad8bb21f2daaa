using Whisper.Protocol.Engine;
using Xunit;

namespace Whisper.Protocol.Tests;

/// <summary>RFC 9002 section 5 with the engine's floor and ceiling. All values are whole ticks, so equality is exact.</summary>
public sealed class RttEstimatorTests
{
    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    private static readonly EngineOptions Wide = new()
    {
        MinRetransmitTimeout = Ms(1),
        MaxRetransmitTimeout = TimeSpan.FromSeconds(60),
        MaxAckDelay = Ms(5),
        TimerSlack = TimeSpan.Zero, // the formula alone; the slack's share has its own test
        InitialRtt = Ms(50),
    };

    [Fact]
    public void TheTimeoutAllowsForThePeersAckDelayAndTheirTimersSlack()
    {
        var rtt = new RttEstimator(Wide with { TimerSlack = Ms(4) });

        Assert.Equal(Ms(50 + (4 * 25) + 5 + 4), rtt.RetransmitTimeout(0));
    }

    [Fact]
    public void BeforeAnySampleTheInitialRttIsAssumed()
    {
        var rtt = new RttEstimator(Wide);

        Assert.False(rtt.HasSample);
        Assert.Equal(Ms(50), rtt.Smoothed);
        Assert.Equal(Ms(25), rtt.Variation);
        Assert.Equal(Ms(50 + (4 * 25) + 5), rtt.RetransmitTimeout(0));
    }

    [Fact]
    public void FirstSampleSetsSmoothedToTheSampleAndVariationToHalfOfIt()
    {
        var rtt = new RttEstimator(Wide);

        rtt.AddSample(Ms(100));

        Assert.True(rtt.HasSample);
        Assert.Equal(Ms(100), rtt.Smoothed);
        Assert.Equal(Ms(50), rtt.Variation);
        Assert.Equal(Ms(100), rtt.Latest);
        Assert.Equal(Ms(100 + (4 * 50) + 5), rtt.RetransmitTimeout(0));
    }

    [Fact]
    public void LaterSamplesMoveSmoothedByOneEighthAndVariationByOneQuarter()
    {
        var rtt = new RttEstimator(Wide);
        rtt.AddSample(Ms(100));

        rtt.AddSample(Ms(60));

        // rttvar = 3/4 * 50 + 1/4 * |100 - 60| = 47.5; srtt = 7/8 * 100 + 1/8 * 60 = 95
        Assert.Equal(Ms(47.5), rtt.Variation);
        Assert.Equal(Ms(95), rtt.Smoothed);
        Assert.Equal(Ms(60), rtt.Latest);
        Assert.Equal(Ms(95 + (4 * 47.5) + 5), rtt.RetransmitTimeout(0));

        rtt.AddSample(Ms(175));

        // rttvar = 3/4 * 47.5 + 1/4 * |95 - 175| = 55.625; srtt = 7/8 * 95 + 1/8 * 175 = 105
        Assert.Equal(Ms(55.625), rtt.Variation);
        Assert.Equal(Ms(105), rtt.Smoothed);
    }

    [Fact]
    public void VariationUsesTheSmoothedValueBeforeThisSample()
    {
        var rtt = new RttEstimator(Wide);
        rtt.AddSample(Ms(80));

        rtt.AddSample(Ms(80));

        Assert.Equal(Ms(80), rtt.Smoothed);
        Assert.Equal(Ms(30), rtt.Variation); // 3/4 * 40 + 1/4 * 0
    }

    [Fact]
    public void NegativeSamplesAreIgnored()
    {
        var rtt = new RttEstimator(Wide);

        rtt.AddSample(Ms(-1));

        Assert.False(rtt.HasSample);
        Assert.Equal(Ms(50), rtt.Smoothed);
    }

    [Fact]
    public void VariationTermIsAtLeastTheOneMillisecondGranularity()
    {
        var rtt = new RttEstimator(Wide with { MinRetransmitTimeout = TimeSpan.Zero });

        rtt.AddSample(Ms(0.1));

        Assert.Equal(Ms(0.1 + 1 + 5), rtt.RetransmitTimeout(0));
    }

    [Fact]
    public void TimeoutIsRaisedToTheConfiguredFloor()
    {
        var rtt = new RttEstimator(new EngineOptions { MinRetransmitTimeout = Ms(10), MaxAckDelay = Ms(5), TimerSlack = TimeSpan.Zero });

        rtt.AddSample(Ms(0.1)); // raw rto = 0.1 + 1 + 5 ms

        Assert.Equal(Ms(10), rtt.RetransmitTimeout(0));
    }

    [Fact]
    public void EachConsecutiveExpiryDoublesTheTimeout()
    {
        var rtt = new RttEstimator(Wide);
        rtt.AddSample(Ms(20)); // rto = 20 + 40 + 5 = 65 ms

        Assert.Equal(Ms(65), rtt.RetransmitTimeout(0));
        Assert.Equal(Ms(130), rtt.RetransmitTimeout(1));
        Assert.Equal(Ms(260), rtt.RetransmitTimeout(2));
        Assert.Equal(Ms(520), rtt.RetransmitTimeout(3));
    }

    [Fact]
    public void BackoffStopsDoublingAfterSixExpiries()
    {
        var rtt = new RttEstimator(Wide);
        rtt.AddSample(Ms(20));

        Assert.Equal(Ms(65 * 64), rtt.RetransmitTimeout(6));
        Assert.Equal(Ms(65 * 64), rtt.RetransmitTimeout(30));
    }

    [Fact]
    public void BackedOffTimeoutIsCappedAtTheConfiguredCeiling()
    {
        var options = new EngineOptions(); // defaults: 50 ms initial rtt, 5 ms ack delay and 4 ms timer slack, 1 s ceiling
        var rtt = new RttEstimator(options);

        Assert.Equal(Ms(159), rtt.RetransmitTimeout(0));
        Assert.Equal(Ms(636), rtt.RetransmitTimeout(2));
        Assert.Equal(options.MaxRetransmitTimeout, rtt.RetransmitTimeout(3));
        Assert.Equal(options.MaxRetransmitTimeout, rtt.RetransmitTimeout(100));
    }

    [Fact]
    public void AckDelayIsTakenOffASampleOnlyWhenThatLeavesAtLeastTheMinimum()
    {
        var rtt = new RttEstimator(new EngineOptions());
        rtt.AddSample(Ms(2));
        rtt.AddSample(Ms(10), ackDelay: Ms(5)); // 10 >= 2 + 5: counts as 5
        Assert.Equal(Ms(2.375), rtt.Smoothed); // 7/8 * 2 + 1/8 * 5
        Assert.Equal(Ms(10), rtt.Latest);
        Assert.Equal(Ms(2), rtt.Min);

        rtt.AddSample(Ms(4), ackDelay: Ms(5)); // 4 < 2 + 5: counts whole
        Assert.Equal(Ms(2.578125), rtt.Smoothed);
    }
}
