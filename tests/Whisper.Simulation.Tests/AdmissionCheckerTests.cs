using Whisper.Protocol.Wire;
using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

/// <summary>
/// The admission checkers against hand-written histories: a correct admission passes, and each injected fault (a view
/// or a group over the cap, two members of one name, a node left joining, a denial without its reason, a node denied
/// yet seen as a member) is reported by the right checker.
/// </summary>
public sealed class AdmissionCheckerTests
{
    private static readonly AdmissionRules CapOfThree = new(3);

    [Fact]
    public void CorrectAdmissionAtTheCapWithOneFullAndOneNameTakenPassesEveryChecker()
    {
        var h = Started(5, "ann", "bob", "cy", "dee", "Ann");
        h.Join(0);
        h.View(0, 0);
        h.Join(1);
        h.View(1, 0, 1);
        h.Join(2);
        h.View(2, 0, 1, 2);
        h.View(0, 0, 1, 2);
        h.Deny(3, DenyReason.Full);
        h.Deny(4, DenyReason.NameTaken);

        Assert.Empty(AdmissionCheckers.CheckAll(h.History, CapOfThree));
    }

    [Fact]
    public void CapDetectsAViewWithMoreRunningMembersThanTheCap()
    {
        var h = Started(4);
        h.Join(0);
        h.Join(1);
        h.Join(2);
        h.View(1, 0, 1, 2, 3); // n3 is not joined yet, but introduced itself: it counts in n1's view

        var v = Assert.Single(AdmissionCheckers.Cap(h.History, 3));
        Assert.Equal(Invariants.AdmissionCap, v.Invariant);
        Assert.Contains("n1 saw 4 running members", v.Detail, StringComparison.Ordinal);
        Assert.Equal(1, v.Node);
    }

    [Fact]
    public void CapDetectsMoreJoinedNodesThanTheCapEvenWhenNoViewShowsThemAll()
    {
        var h = Started(4);
        h.Join(0);
        h.Join(1);
        h.Join(2);
        h.Join(3);

        var v = Assert.Single(AdmissionCheckers.Cap(h.History, 3));
        Assert.Contains("n3 joined", v.Detail, StringComparison.Ordinal);
        Assert.Contains("member number 4", v.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void CapDoesNotCountACrashedMemberStillSuspectInAView()
    {
        var h = Started(4);
        h.Join(0);
        h.Join(1);
        h.Join(2);
        h.Crash(2);
        h.Join(3); // took the crashed member's slot
        h.View(0, 0, 1, 2, 3);

        Assert.Empty(AdmissionCheckers.Cap(h.History, 3));
    }

    [Fact]
    public void UniqueNamesDetectsTwoRunningMembersWhoseNamesDifferOnlyInCase()
    {
        var h = Started(3, "ann", "bob", "ANN");
        h.Join(0);
        h.Join(1);
        h.Join(2);
        h.View(1, 0, 1, 2);

        var found = AdmissionCheckers.UniqueNames(h.History);
        Assert.Equal(2, found.Count);
        Assert.All(found, v => Assert.Equal(Invariants.UniqueNames, v.Invariant));
        Assert.Contains(found, v => v.Detail.Contains("n2 'ANN' joined", StringComparison.Ordinal) && v.Detail.Contains("n0 'ann'", StringComparison.Ordinal));
        Assert.Contains(found, v => v.Detail.Contains("n1 saw both n0 'ann' and n2 'ANN'", StringComparison.Ordinal));
    }

    [Fact]
    public void UniqueNamesAllowsANewcomerToTakeTheNameOfACrashedMember()
    {
        var h = Started(3, "ann", "bob", "Ann");
        h.Join(0);
        h.Join(1);
        h.Crash(0);
        h.Join(2);
        h.View(1, 0, 1, 2); // the crashed incarnation is still Suspect there

        Assert.Empty(AdmissionCheckers.UniqueNames(h.History));
    }

    [Fact]
    public void OutcomesDetectANodeLeftJoining()
    {
        var h = Started(2);
        h.Join(0);

        var v = Assert.Single(AdmissionCheckers.Outcomes(h.History, CapOfThree));
        Assert.Equal(Invariants.AdmissionOutcome, v.Invariant);
        Assert.Contains("n1 'n1' is still joining", v.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void OutcomesDetectAFullDenialBelowTheCap()
    {
        var h = Started(3);
        h.Join(0);
        h.Join(1);
        h.Deny(2, DenyReason.Full);

        var v = Assert.Single(AdmissionCheckers.Outcomes(h.History, CapOfThree));
        Assert.Contains("denied Full", v.Detail, StringComparison.Ordinal);
        Assert.Contains("only 2 node(s)", v.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void OutcomesDetectANameTakenDenialWhenTheHolderHadCrashed()
    {
        var h = Started(3, "ann", "bob", "ANN");
        h.Join(0);
        h.Join(1);
        h.Crash(0);
        h.Deny(2, DenyReason.NameTaken);

        var v = Assert.Single(AdmissionCheckers.Outcomes(h.History, CapOfThree));
        Assert.Contains("n2 'ANN' was denied NameTaken", v.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void OutcomesAcceptUnreachableOnlyWhenFewRequestsReachedAContactAbleToAnswer()
    {
        var h = Started(2);
        h.Join(0);
        h.Deny(1, DenyReason.Unreachable);

        Assert.Empty(AdmissionCheckers.Outcomes(h.History, CapOfThree with { AnswerableRequests = [0, 3] }));
        var v = Assert.Single(AdmissionCheckers.Outcomes(h.History, CapOfThree with { AnswerableRequests = [0, 12] }));
        Assert.Contains("gave up as Unreachable", v.Detail, StringComparison.Ordinal);
        Assert.Contains("12 of its join requests", v.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void OutcomesRejectReasonsNoValidNameShouldMeet()
    {
        var h = Started(2);
        h.Join(0);
        h.Deny(1, DenyReason.Other);

        var v = Assert.Single(AdmissionCheckers.Outcomes(h.History, CapOfThree));
        Assert.Contains("denied Other", v.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void AgreementDetectsADeniedNodeThatMembersSawAsAMember()
    {
        var h = Started(3);
        h.Join(0);
        h.Join(1);
        h.View(0, 0, 1, 2);
        h.View(0, 0, 1, 2); // reported once per observer
        h.Deny(2, DenyReason.Unreachable);

        var v = Assert.Single(AdmissionCheckers.Agreement(h.History));
        Assert.Equal(Invariants.AdmissionAgreement, v.Invariant);
        Assert.Contains("n0 saw n2 'n2' as a member", v.Detail, StringComparison.Ordinal);
        Assert.Contains("denied Unreachable", v.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void DeniedNodesAreNotLiveMembersForTheDeliveryCheckers()
    {
        var h = Started(3);
        h.Join(0);
        h.Join(1);
        var b = h.Broadcast(0, 0);
        h.Deliver(1, b);
        h.Deny(2, DenyReason.Full);
        h.History.SetFinalView(0, [(1, Protocol.Engine.MemberStatus.Up)]);
        h.History.SetFinalView(1, [(0, Protocol.Engine.MemberStatus.Up)]);

        Assert.False(h.History.IsLive(2));
        Assert.Empty(Checkers.CheckAll(h.History));
    }

    private static SyntheticHistory Started(int nodes, params string[] names)
    {
        var h = new SyntheticHistory(nodes, allJoined: false);
        for (var n = 0; n < nodes; n++)
        {
            h.Start(n, n < names.Length ? names[n] : null);
        }

        return h;
    }
}
