using System.Net;
using Whisper.Protocol.Wire;

namespace Whisper.Protocol.Engine;

public sealed partial class WhisperEngine
{
    /// <summary>Another member incarnation as this node sees it, with both directions of every stream to it.</summary>
    private sealed class Peer(MemberId id, string name, IPEndPoint endpoint, EngineOptions options)
    {
        public MemberId Id { get; } = id;
        public string Name { get; set; } = name;
        public IPEndPoint Endpoint { get; set; } = endpoint;
        public MemberRef Ref => new(Name, Id);
        public MemberStatus Status { get; set; } = MemberStatus.Up;
        public bool InView => Status is MemberStatus.Up or MemberStatus.Suspect;
        public RttEstimator Rtt { get; } = new(options);

        // Introduction: HeardIntro = we know where their broadcast stream starts for us.
        public bool HeardIntro { get; set; }
        public ulong Seniority { get; set; }
        public ulong MyBase { get; set; }
        public TimeSpan NextIntroAt { get; set; }
        public int IntroAttempts { get; set; }

        // Liveness.
        public TimeSpan LearnedAt { get; set; }
        public TimeSpan LastHeard { get; set; }
        public TimeSpan NextPingAt { get; set; }

        // Heartbeats ride on the next datagram to them when one goes soon (see RideAlong): a ping of ours waiting for one
        // until PingBy, and the answer to their latest ping waiting until PongBy (the time it waited goes with it).
        public bool PingWaiting { get; set; }
        public TimeSpan PingBy { get; set; } = TimeSpan.MaxValue;
        public bool PongWaiting { get; set; }
        public ulong PongToken { get; set; }
        public TimeSpan PingHeardAt { get; set; }
        public TimeSpan PongBy { get; set; } = TimeSpan.MaxValue;

        // What they reported receiving (contiguous) per broadcast origin; drives retransmission, relay and stability.
        // The dictionary holds every origin they named; the slot array mirrors it for the streams we have, so the
        // per-datagram stability update reads an array instead of a dictionary per member and stream.
        public Dictionary<MemberId, ulong> Received { get; } = [];
        private ulong[] _receivedBySlot = new ulong[16];

        // Retransmission of my broadcast stream to them.
        public TimeSpan RetxAt { get; set; } = TimeSpan.MaxValue;
        public int Backoff { get; set; }

        // Private stream me -> them.
        public ulong PrivSent { get; set; }
        public ulong PrivAcked { get; set; }
        public SortedDictionary<ulong, PrivateChunkFrame> PrivUnacked { get; } = [];
        public TimeSpan PrivRetxAt { get; set; } = TimeSpan.MaxValue;
        public int PrivBackoff { get; set; }

        // Private stream them -> me.
        public ulong PrivContig { get; set; }
        public ulong PrivDelivered { get; set; }
        public ulong PrivHighest { get; set; }
        public SeqMap<PrivateChunkFrame> PrivIn { get; } = new();
        public TimeSpan PrivNackAt { get; set; } = TimeSpan.MaxValue;
        public int PrivNackAttempts { get; set; }

        // Outgoing frames and acknowledgement state.
        public FrameQueue Outbox { get; } = new();
        public bool AckPending { get; set; }
        public bool AckNow { get; set; }
        public TimeSpan AckAt { get; set; } = TimeSpan.MaxValue;
        public int UnackedDatagrams { get; set; }

        /// <summary>Loss estimate of the link to them (drives redundant sends, <see cref="EngineOptions.RedundantSendAboveLoss"/>).</summary>
        public LossEstimate Loss { get; } = new();

        // Leaving: resend our LeaveFrame until they acknowledged our final sequence.
        public bool LeaveNeeded { get; set; }

        /// <summary>What they reported receiving of <paramref name="origin"/>'s stream (the mirror of <see cref="Received"/>).</summary>
        public ulong ReceivedOf(OriginStream origin)
        {
            var slots = _receivedBySlot;
            return (uint)origin.Slot < (uint)slots.Length ? slots[origin.Slot] : 0;
        }

        /// <summary>Keeps the mirror equal to <see cref="Received"/> for the stream in <paramref name="slot"/>.</summary>
        public void MirrorReceived(int slot, ulong value)
        {
            if (slot >= _receivedBySlot.Length)
            {
                if (value == 0)
                {
                    return; // a slot past the array reads as 0 already
                }

                Array.Resize(ref _receivedBySlot, Math.Max(slot + 1, _receivedBySlot.Length * 2));
            }

            _receivedBySlot[slot] = value;
        }
    }

    /// <summary>
    /// A sender's loss estimate: chunks acknowledged against chunks it had to send again (on timeout or negative ack),
    /// halved as it grows so that it follows the link.
    /// </summary>
    private sealed class LossEstimate
    {
        public int Samples { get; private set; }
        public int Events { get; private set; }

        public double Rate => Samples == 0 ? 0 : Events / (double)Samples;

        public void Delivered(ulong chunks) => Add((int)Math.Min(chunks, 256), 0);

        public void Lost(int chunks) => Add(chunks, chunks);

        private void Add(int samples, int events)
        {
            Samples += samples;
            Events += events;
            while (Samples > 512)
            {
                Samples /= 2;
                Events /= 2;
            }
        }
    }

    /// <summary>The broadcast stream of one member incarnation (this node's own included).</summary>
    private sealed class OriginStream(MemberId id, string name)
    {
        public MemberId Id { get; } = id;

        /// <summary>This stream's index in the members' received-count mirrors (<see cref="Peer.ReceivedOf"/>), unique among the engine's streams.</summary>
        public int Slot { get; init; }
        public string Name { get; set; } = name;

        /// <summary>True once we know <see cref="Base"/>: chunks at or below it are not for us.</summary>
        public bool BaseKnown { get; set; }

        /// <summary>The id is also in the retired set, which wins for delivery checks (kept by <c>OriginsChanged</c>).</summary>
        public bool Retired { get; set; }
        public ulong Base { get; set; }

        /// <summary>The base came from another member's departed list: we never held any of this stream.</summary>
        public bool Adopted { get; set; }

        /// <summary>Highest sequence received without gaps.</summary>
        public ulong Contig { get; set; }

        /// <summary>Highest sequence whose message was delivered: this origin's entry in our vector clock.</summary>
        public ulong Delivered { get; set; }

        /// <summary>Highest sequence known to exist (seen, acknowledged by someone, or referenced by deps).</summary>
        public ulong Highest { get; set; }

        /// <summary>Chunks at or below this are acknowledged by every member in view and released.</summary>
        public ulong Stable { get; set; }

        /// <summary>
        /// An ack raised some member's received count of this stream since <see cref="Stable"/> was last worked out
        /// (so it may rise); with <see cref="StabilityOwnSeen"/>, lets a datagram's stability update skip the streams
        /// nothing moved in.
        /// </summary>
        public bool AckMoved { get; set; }

        /// <summary>min(Delivered, Contig) when <see cref="Stable"/> was last worked out.</summary>
        public ulong StabilityOwnSeen { get; set; }

        /// <summary>Received (or, for our own stream, sent) chunks above <see cref="Stable"/>. Pooled: this dictionary owns them, and a chunk goes back to the engine's pool exactly when it leaves it (stability or retirement).</summary>
        public SeqMap<ChunkFrame> Chunks { get; } = new();
        /// <summary>When this stream's next negative ack is due: the earlier of <see cref="NackRepeatAt"/> and <see cref="NackFreshAt"/>.</summary>
        public TimeSpan NackAt { get; set; } = TimeSpan.MaxValue;

        /// <summary>When everything still missing is asked for again (a timeout after the last full request, with backoff).</summary>
        public TimeSpan NackRepeatAt { get; set; } = TimeSpan.MaxValue;

        /// <summary>When the gaps that opened above <see cref="NackedThrough"/> since the last request are asked for (after the reorder delay).</summary>
        public TimeSpan NackFreshAt { get; set; } = TimeSpan.MaxValue;

        /// <summary>Every chunk missing at or below this was asked for at least once in the current run of gaps.</summary>
        public ulong NackedThrough { get; set; }

        /// <summary>Chunks up to this (above <see cref="NackedThrough"/>) were looked at for fresh gaps and found present.</summary>
        public ulong FreshScannedThrough { get; set; }

        public int NackAttempts { get; set; }

        /// <summary><see cref="Contig"/> when the last full negative ack of this stream left: a later round that finds it higher was answered.</summary>
        public ulong NackedAtContig { get; set; }
        public MemberId HolderHint { get; set; }
        public bool Blocked { get; set; }

        /// <summary>When the member left our view (down or left), or was learned of as already departed.</summary>
        public TimeSpan? DepartedAt { get; set; }

        /// <summary>Since when the departed stream has been complete and acknowledged by every member in view.</summary>
        public TimeSpan? CompleteSince { get; set; }
    }
}
