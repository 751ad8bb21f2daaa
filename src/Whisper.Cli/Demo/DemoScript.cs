namespace Whisper.Cli.Demo;

/// <summary>The cast and the lines of the scripted conversation; the runner picks from them with the run's seed.</summary>
internal static class DemoScript
{
    public static readonly string[] Names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"];

    /// <summary>Spectre colour of each name (same index as <see cref="Names"/>).</summary>
    public static readonly string[] Colors = ["deepskyblue1", "orange1", "green3", "magenta1", "gold1", "turquoise2", "salmon1", "mediumpurple1", "chartreuse1", "hotpink"];

    /// <summary>Threads: a starter, then answers in order (each answers the previous line of its thread).</summary>
    public static readonly string[][] Threads =
    [
        ["who broke the build?", "not me, I only touched the docs", "the CI log points at the codec tests", "my bad, the fuzz seed found a bug", "fixed on main, rerun it", "green again, thanks"],
        ["lunch at noon?", "yes, the noodle place?", "they close on Tuesdays", "pizza then", "count me in", "booked a table for six"],
        ["release 0.2 on Friday?", "only if the stability fix lands", "it is in review", "approved, merging now", "tagging tonight then", "changelog is up"],
        ["the demo loses 20% of datagrams and still delivers everything", "retransmissions and NACKs do the work", "and vector clocks keep replies after questions", "so nobody sees an answer before its question", "exactly once, too", "nice"],
        ["anyone seen my charger?", "the blue one?", "it is on the meeting room table", "got it, thanks"],
        ["coffee machine is fixed", "finally", "who fixed it?", "facilities, this morning", "I owe them a cake"],
        ["standup moved to 10:30", "works for me", "can we keep it short?", "15 minutes, promise"],
        ["the server just went away", "we do not need it any more", "membership is peer to peer after joining", "and the leases resume when it comes back"],
    ];

    /// <summary>Private asides, sent to the author of the line just answered.</summary>
    public static readonly string[] Asides =
    [
        "between us: that was my fault",
        "can you review my PR after this?",
        "thanks for covering for me",
        "are you coming to the offsite?",
        "lunch is on me today",
        "ping me when you are free",
    ];
}
