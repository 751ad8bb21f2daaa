namespace Whisper.Protocol.Engine;

/// <summary>
/// When each chunk of this node's own broadcast stream was first sent, and whether it was ever sent again, for the
/// chunks still in flight: a ring indexed by sequence number, so recording and looking up allocate nothing.
/// <para>Two uses: a chunk is retransmitted only once it is older than the retransmission timeout (a chunk sent a
/// moment ago cannot have been acknowledged yet, whatever the peer's timer says), and an acknowledgement of a chunk
/// that was sent once gives a round-trip sample (Karn's rule: never from a retransmitted chunk).</para>
/// </summary>
internal sealed class SendLog
{
    private readonly ulong[] _seq;
    private readonly TimeSpan[] _sentAt;
    private readonly bool[] _resent;
    private readonly int _mask;

    /// <param name="capacity">At least the send window: older entries are overwritten and then read as unknown.</param>
    public SendLog(int capacity)
    {
        var size = 1;
        while (size < capacity)
        {
            size <<= 1;
        }

        _seq = new ulong[size];
        _sentAt = new TimeSpan[size];
        _resent = new bool[size];
        _mask = size - 1;
    }

    public void Sent(ulong seq, TimeSpan at)
    {
        var i = (int)(seq & (ulong)_mask);
        _seq[i] = seq;
        _sentAt[i] = at;
        _resent[i] = false;
    }

    public void Resent(ulong seq)
    {
        var i = (int)(seq & (ulong)_mask);
        if (_seq[i] == seq)
        {
            _resent[i] = true;
        }
    }

    /// <summary>When <paramref name="seq"/> was first sent, or false when it is not (or no longer) recorded.</summary>
    public bool TryGetSentAt(ulong seq, out TimeSpan at, out bool resent)
    {
        var i = (int)(seq & (ulong)_mask);
        if (seq != 0 && _seq[i] == seq)
        {
            at = _sentAt[i];
            resent = _resent[i];
            return true;
        }

        at = default;
        resent = false;
        return false;
    }
}
