using System.Diagnostics;
using System.Net;
using Whisper.Net;
using Xunit;

namespace Whisper.IntegrationTests.InProcess;

/// <summary>
/// The blocking receive a node's driver thread waits in (<see cref="IBlockingDatagramReceiver"/>): on Linux straight on
/// the descriptor (a blocking recvmmsg bounded by SO_RCVTIMEO, poll() for waits shorter than a scheduler tick), elsewhere
/// .NET's receive; both woken by a self-addressed zero-length datagram. Every test runs on both paths.
/// </summary>
public sealed class BlockingReceiveTests
{
    private static readonly IPEndPoint Loopback = new(IPAddress.Loopback, 0);

    public static TheoryData<bool> Paths => new() { true, false };

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task AZeroTimeoutTakesOnlyWhatIsAlreadyThere(bool nativeWait)
    {
        await using var a = UdpDatagramTransport.Bind(Loopback, null, nativeWait);
        await using var b = UdpDatagramTransport.Bind(Loopback, null, nativeWait);
        var buffer = new byte[64 * 1024];

        var started = Stopwatch.GetTimestamp();
        Assert.False(b.TryReceive(buffer, TimeSpan.Zero, out _));
        Assert.True(Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(1)); // it did not wait for anything

        Assert.True(a.Send("first"u8, b.LocalEndpoint));
        Assert.True(a.Send("second"u8, b.LocalEndpoint));
        Assert.True(b.TryReceive(buffer, TimeSpan.FromSeconds(5), out var first)); // the first may still be in flight
        Assert.Equal("first"u8.ToArray(), buffer[..first.Length]);
        Assert.Equal(a.LocalEndpoint, first.From);
        Assert.True(SpinUntil(() => b.TryReceive(buffer, TimeSpan.Zero, out var second) && second.Length == 6));
        Assert.Equal("second"u8.ToArray(), buffer[..6]);
        Assert.False(b.TryReceive(buffer, TimeSpan.Zero, out _));
        Assert.Equal(nativeWait && OperatingSystem.IsLinux(), b.UsesNativeWait);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task WakeEndsAWaitLongBeforeItsTimeout(bool nativeWait)
    {
        await using var b = UdpDatagramTransport.Bind(Loopback, null, nativeWait);
        var waiting = new ManualResetEventSlim();
        var receive = Task.Factory.StartNew(() =>
        {
            var buffer = new byte[64 * 1024];
            waiting.Set();
            var started = Stopwatch.GetTimestamp();
            var got = b.TryReceive(buffer, TimeSpan.FromSeconds(30), out var received);
            return (Elapsed: Stopwatch.GetElapsedTime(started), Got: got, received.Length);
        }, TaskCreationOptions.LongRunning);

        Assert.True(waiting.Wait(TimeSpan.FromSeconds(10)));
        await Task.Delay(50); // let it enter its wait (a wake-up that comes first ends the next wait instead)
        b.Wake();
        var (elapsed, got, length) = await receive.WaitAsync(TimeSpan.FromSeconds(20));

        Assert.True(elapsed < TimeSpan.FromSeconds(15), $"the wait lasted {elapsed}");
        Assert.True(!got || length == 0); // a wake-up is never taken for data
    }

    [Fact]
    public async Task OnLinuxTheNativeReceiveWaitsInTheSocketItself()
    {
        await using var native = UdpDatagramTransport.Bind(Loopback, null, nativeWait: true);
        await using var dotnet = UdpDatagramTransport.Bind(Loopback, null, nativeWait: false);

        Assert.Equal(OperatingSystem.IsLinux(), native.WaitsInSocket); // a kernel whose SO_RCVTIMEO is not in ticks would poll
        Assert.False(dotnet.WaitsInSocket);
    }

    [Theory]
    [InlineData(2)] // shorter than a scheduler tick (4 ms at 250 Hz): poll()
    [InlineData(30)] // whole ticks in the socket, the rest in poll()
    [InlineData(300)]
    public async Task ANativeWaitWithNothingToTakeLastsItsTimeoutNotLess(int millis)
    {
        // (.NET's receive rounds its timeout to scheduler ticks, so it may end up to a tick early: not checked here.)
        await using var b = UdpDatagramTransport.Bind(Loopback, null, nativeWait: true);
        var buffer = new byte[64 * 1024];

        var started = Stopwatch.GetTimestamp();
        var got = b.TryReceive(buffer, TimeSpan.FromMilliseconds(millis), out _);
        var elapsed = Stopwatch.GetElapsedTime(started);

        Assert.False(got);
        // Whole ticks in the socket end before the deadline, never after it; poll() waits out the rest.
        Assert.True(elapsed >= TimeSpan.FromMilliseconds(millis - 1), $"a {millis} ms wait ended after {elapsed.TotalMilliseconds:F2} ms");
        Assert.True(elapsed < TimeSpan.FromMilliseconds(millis) + TimeSpan.FromSeconds(2), $"a {millis} ms wait lasted {elapsed}");
    }

    [Theory]
    [InlineData(1, 4)] // shorter than a tick: with the slack, one tick in the socket (no poll)
    [InlineData(3, 4)]
    [InlineData(30, 4)]
    public async Task ANativeWaitWithSlackLastsItsTimeoutAndEndsByTheSlackAfterIt(int millis, int slackMillis)
    {
        await using var b = UdpDatagramTransport.Bind(Loopback, null, nativeWait: true);
        var buffer = new byte[64 * 1024];

        var started = Stopwatch.GetTimestamp();
        var got = b.TryReceive(buffer, TimeSpan.FromMilliseconds(millis), TimeSpan.FromMilliseconds(slackMillis), out _);
        var elapsed = Stopwatch.GetElapsedTime(started);

        Assert.False(got);
        Assert.True(elapsed >= TimeSpan.FromMilliseconds(millis - 1), $"a {millis} ms wait ended after {elapsed.TotalMilliseconds:F2} ms");
        // The ticks it blocks for end by the timeout plus the slack; a busy machine may run the thread later still.
        Assert.True(elapsed < TimeSpan.FromMilliseconds(millis + slackMillis) + TimeSpan.FromSeconds(2), $"a {millis} ms wait lasted {elapsed}");
    }

    [Fact]
    public async Task ADatagramThatComesDuringWaitsWithSlackIsTaken()
    {
        await using var a = UdpDatagramTransport.Bind(Loopback, null, nativeWait: true);
        await using var b = UdpDatagramTransport.Bind(Loopback, null, nativeWait: true);
        var buffer = new byte[64 * 1024];
        var receive = Task.Factory.StartNew(() =>
        {
            var got = b.TryReceive(buffer, TimeSpan.FromMilliseconds(2), TimeSpan.FromMilliseconds(4), out var received);
            for (var i = 0; i < 10_000 && !got; i++) // bounded: each wait lasts about a tick
            {
                got = b.TryReceive(buffer, TimeSpan.FromMilliseconds(2), TimeSpan.FromMilliseconds(4), out received);
            }

            return (got, received.Length);
        }, TaskCreationOptions.LongRunning);

        await Task.Delay(20);
        Assert.True(a.Send("hello"u8, b.LocalEndpoint));
        var (gotIt, length) = await receive.WaitAsync(TimeSpan.FromSeconds(20));

        Assert.True(gotIt);
        Assert.Equal(5, length);
        Assert.Equal("hello"u8.ToArray(), buffer[..5]);
    }

    [Fact]
    public async Task AfterAnAsynchronousReceiveMadeTheDescriptorNonBlockingTheNativeWaitStillWaitsWakesAndReceives()
    {
        await using var a = UdpDatagramTransport.Bind(Loopback);
        await using var b = UdpDatagramTransport.Bind(Loopback);
        var buffer = new byte[64 * 1024];
        Assert.True(a.Send("async"u8, b.LocalEndpoint));
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            var first = await b.ReceiveAsync(buffer, cts.Token); // .NET makes the descriptor non-blocking for this
            Assert.Equal(5, first.Length);
        }

        // The first wait finds the descriptor non-blocking and switches to poll(), which may end that one wait early.
        _ = b.TryReceive(buffer, TimeSpan.FromMilliseconds(50), out _);
        Assert.False(b.WaitsInSocket);
        var started = Stopwatch.GetTimestamp();
        Assert.False(b.TryReceive(buffer, TimeSpan.FromMilliseconds(100), out _));
        Assert.True(Stopwatch.GetElapsedTime(started) >= TimeSpan.FromMilliseconds(99), "the wait did not wait: it would spin");

        var waiting = new ManualResetEventSlim();
        var receive = Task.Factory.StartNew(() =>
        {
            var mine = new byte[64 * 1024];
            waiting.Set();
            var got = b.TryReceive(mine, TimeSpan.FromSeconds(30), out var received);
            return (Got: got, received.Length);
        }, TaskCreationOptions.LongRunning);
        Assert.True(waiting.Wait(TimeSpan.FromSeconds(10)));
        await Task.Delay(50);
        b.Wake();
        var (gotWake, length) = await receive.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(!gotWake || length == 0);

        Assert.True(a.Send("after"u8, b.LocalEndpoint));
        Assert.True(b.TryReceive(buffer, TimeSpan.FromSeconds(5), out var after));
        Assert.Equal("after"u8.ToArray(), buffer[..after.Length]);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task ABlockingReceiveSurvivesTheIcmpErrorOfASendToAClosedPort(bool nativeWait)
    {
        await using var a = UdpDatagramTransport.Bind(Loopback, null, nativeWait);
        await using var b = UdpDatagramTransport.Bind(Loopback, null, nativeWait);
        int closedPort;
        using (var probe = new System.Net.Sockets.UdpClient(Loopback))
        {
            closedPort = ((IPEndPoint)probe.Client.LocalEndPoint!).Port;
        }

        Assert.True(a.Send("nobody"u8, new IPEndPoint(IPAddress.Loopback, closedPort)));
        await Task.Delay(50); // the port-unreachable comes back to a
        Assert.True(b.Send("hello"u8, a.LocalEndpoint));
        var buffer = new byte[64 * 1024];

        Assert.True(a.TryReceive(buffer, TimeSpan.FromSeconds(5), out var received));
        Assert.Equal("hello"u8.ToArray(), buffer[..received.Length]);
        Assert.Equal(b.LocalEndpoint, received.From);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task ABurstLongerThanOneBatchComesOutOneByOneInOrderWithEachSender(bool nativeWait)
    {
        await using var a = UdpDatagramTransport.Bind(Loopback, null, nativeWait);
        await using var c = UdpDatagramTransport.Bind(Loopback, null, nativeWait);
        await using var b = UdpDatagramTransport.Bind(Loopback, null, nativeWait);
        const int Count = 75; // more than two batches of the native receive (LinuxSocketWait.BatchSize)
        for (var i = 0; i < Count; i++)
        {
            Assert.True((i % 2 == 0 ? a : c).Send(System.Text.Encoding.ASCII.GetBytes($"m{i}"), b.LocalEndpoint));
        }

        var buffer = new byte[64 * 1024];
        for (var i = 0; i < Count; i++)
        {
            Assert.True(b.TryReceive(buffer, TimeSpan.FromSeconds(5), out var received), $"datagram {i} did not come");
            Assert.Equal($"m{i}", System.Text.Encoding.ASCII.GetString(buffer, 0, received.Length));
            Assert.Equal((i % 2 == 0 ? a : c).LocalEndpoint, received.From);
        }

        Assert.False(b.TryReceive(buffer, TimeSpan.FromMilliseconds(50), out _));
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task ADatagramLongerThanTheProtocolAllowsIsReportedWithItsRealLength(bool nativeWait)
    {
        await using var a = UdpDatagramTransport.Bind(Loopback, null, nativeWait);
        await using var b = UdpDatagramTransport.Bind(Loopback, null, nativeWait);
        var big = new byte[5000];
        Assert.True(a.Send(big, b.LocalEndpoint));
        Assert.True(a.Send("after"u8, b.LocalEndpoint));
        var buffer = new byte[64 * 1024];

        Assert.True(b.TryReceive(buffer, TimeSpan.FromSeconds(5), out var first));
        Assert.Equal(big.Length, first.Length); // so the node counts and drops it (longer than WireCodec.MaxDatagramSize)
        Assert.True(b.TryReceive(buffer, TimeSpan.FromSeconds(5), out var second));
        Assert.Equal("after"u8.ToArray(), buffer[..second.Length]);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task QueuedSendsLeaveInOrderByTheFlushWhateverTheirLengthAndNumber(bool nativeWait)
    {
        await using var a = UdpDatagramTransport.Bind(Loopback, null, nativeWait);
        await using var b = UdpDatagramTransport.Bind(Loopback, null, nativeWait);
        await using var c = UdpDatagramTransport.Bind(Loopback, null, nativeWait);
        const int Count = 70; // more than two batches: full batches leave on their own, in order
        var expected = new List<(UdpDatagramTransport To, byte[] Body)>();
        for (var i = 0; i < Count; i++)
        {
            var body = i == 33 ? new byte[3000] : System.Text.Encoding.ASCII.GetBytes($"m{i}"); // one longer than a batch slot
            body[0] = (byte)'m';
            var to = i % 3 == 0 ? c : b;
            Assert.True(a.QueueSend(body, to.LocalEndpoint));
            expected.Add((to, body));
        }

        Assert.Equal(0, a.FlushSends());
        Assert.Equal(nativeWait && OperatingSystem.IsLinux(), a.SupportsBatchSend);
        var buffer = new byte[64 * 1024];
        foreach (var receiver in new[] { b, c })
        {
            foreach (var (_, body) in expected.Where(e => e.To == receiver))
            {
                Assert.True(receiver.TryReceive(buffer, TimeSpan.FromSeconds(5), out var received), "a queued datagram did not come");
                Assert.Equal(body, buffer[..received.Length]);
                Assert.Equal(a.LocalEndpoint, received.From);
            }
        }

        Assert.Equal(0, a.SendFailures);
    }

    [Fact]
    public async Task ADroppedDatagramDoesNotRestartTheWaitOfAFaultInjectingTransport()
    {
        await using var sender = UdpDatagramTransport.Bind(Loopback);
        await using var lossy = new FaultInjectingTransport(UdpDatagramTransport.Bind(Loopback), new FaultOptions { DropIncoming = 1, Seed = 1 });
        using var stop = new CancellationTokenSource();
        using var streaming = new ManualResetEventSlim();
        var stream = Task.Factory.StartNew(() =>
        {
            // A datagram every 20 ms for up to 10 s: each arrives (and is dropped) long before the 300 ms wait ends.
            for (var i = 0; i < 500 && !stop.IsCancellationRequested; i++)
            {
                sender.Send("noise"u8, lossy.LocalEndpoint);
                streaming.Set();
                Thread.Sleep(20);
            }
        }, TaskCreationOptions.LongRunning);
        Assert.True(streaming.Wait(TimeSpan.FromSeconds(10)));

        var buffer = new byte[64 * 1024];
        var started = Stopwatch.GetTimestamp();
        var got = lossy.TryReceive(buffer, TimeSpan.FromMilliseconds(300), out _);
        var elapsed = Stopwatch.GetElapsedTime(started);
        await stop.CancelAsync();
        await stream.WaitAsync(TimeSpan.FromSeconds(20));

        Assert.False(got);
        Assert.True(lossy.DroppedIncoming > 0, "nothing arrived to drop");
        Assert.True(elapsed < TimeSpan.FromSeconds(5), $"the 300 ms wait lasted {elapsed}"); // restarted waits would last the whole stream (10 s)
    }

    private static bool SpinUntil(Func<bool> condition)
    {
        var deadline = Stopwatch.GetTimestamp() + (5 * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            if (condition())
            {
                return true;
            }

            Thread.Sleep(1);
        }

        return false;
    }
}
