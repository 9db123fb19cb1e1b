// pre_promote veto (docs/operations.md, "Hooks"): a chosen node whose keeper reports
// that its hook refused the promotion is not promoted; the election picks another
// node, or waits promotion_veto_timeout and asks the same one again; a switchover
// is abandoned and the old primary resumes.
#include "group_builder.h"

#include "libautofailover/decide.h"

#include <catch2/catch.hpp>

using namespace autofailover;
using namespace autofailover::testing;
using namespace std::chrono_literals;
using S = NodeState;

namespace {


// Node `id` vetoed `ago` before the clock's now.
struct Veto {
    NodeId id;
    std::chrono::milliseconds ago;
};

GroupSnapshot with_vetoes(const GroupBuilder& b, std::initializer_list<Veto> vetoes) {
    GroupSnapshot g = b.build();
    for (const auto& v : vetoes)
        for (auto& n : g.nodes)
            if (n.id == v.id) n.promotion_vetoed_at = b.clock().now - v.ago;
    return g;
}

Decision run_vetoed(const GroupBuilder& b, std::initializer_list<Veto> vetoes,
                    const FormationSettings& settings = FormationSettings{}) {
    Decision d = decide(with_vetoes(b, vetoes), settings, b.clock());
    INFO(describe(d));
    return d;
}

}  // namespace

TEST_CASE("an elected node whose pre_promote hook vetoed goes back to report_lsn, with the reason", "[veto]") {
    // node_2 was chosen 1 s ago (goal prepare_promotion), its keeper still reports report_lsn
    // and vetoed 200 ms ago.
    GroupBuilder b;
    b.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn, 0x900, 90).goal(S::PreparePromotion)
        .node(3, S::ReportLsn, 0x900, 10);
    auto d = run_vetoed(b, {{2, 200ms}});
    CHECK(goal_for(d, 2) == S::ReportLsn);
    CHECK_FALSE(goal_for(d, 3));
    REQUIRE(d.assignments.size() == 1);
    CHECK_THAT(d.assignments[0].reason, Catch::Contains("pre_promote hook") && Catch::Contains("vetoed"));

    SECTION("the same goes for a node told to fast-forward first") {
        GroupBuilder ff;
        ff.node(1, S::Demoted).dead(5s).node(2, S::FastForward, 0x900).goal(S::PreparePromotion)
            .node(3, S::ReportLsn, 0x900);
        CHECK(goal_for(run_vetoed(ff, {{2, 200ms}}), 2) == S::ReportLsn);
    }
}

TEST_CASE("a veto older than the current promotion goal does not count", "[veto]") {
    // Vetoed 5 s ago, chosen again 1 s ago: this promotion goes ahead.
    GroupBuilder b;
    b.node(1, S::Demoted).dead(5s).node(2, S::PreparePromotion, 0x900).node(3, S::ReportLsn, 0x900);
    CHECK(goal_for(run_vetoed(b, {{2, 5s}}), 2) == S::WaitPrimary);
}

TEST_CASE("the next election skips a node whose veto stands and elects another", "[veto]") {
    // node_2 has the higher priority and the most WAL but vetoed 1 s ago: node_3 is
    // elected and first fetches the WAL it lacks from node_2.
    GroupBuilder b;
    b.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn, 0x900, 90).node(3, S::ReportLsn, 0x500, 10);
    auto d = run_vetoed(b, {{2, 1s}});
    CHECK_FALSE(goal_for(d, 2));
    CHECK(goal_for(d, 3) == S::FastForward);
    CHECK(choose_fast_forward_source(with_vetoes(b, {{2, 1s}}), 3) == NodeId{2});

    GroupBuilder same_lsn;
    same_lsn.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn, 0x900, 90).node(3, S::ReportLsn, 0x900, 10);
    CHECK(goal_for(run_vetoed(same_lsn, {{2, 1s}}), 3) == S::PreparePromotion);
}

TEST_CASE("with no other candidate the election waits, then asks the vetoing node again", "[veto]") {
    GroupBuilder b;
    b.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn, 0x900, 90).node(3, S::ReportLsn, 0x900, 0);
    auto w = run_vetoed(b, {{2, 4s}});
    CHECK(w.assignments.empty());
    CHECK_THAT(w.waiting_reason, Catch::Contains("vetoed the promotion of node_2") &&
                                     Catch::Contains("asked again in 6000 ms"));
    // promotion_veto_timeout (10 s by default) later: elected again.
    CHECK(goal_for(run_vetoed(b, {{2, 10s}}), 2) == S::PreparePromotion);
    FormationSettings short_veto;
    short_veto.timeouts.promotion_veto_timeout = 3s;
    CHECK(goal_for(run_vetoed(b, {{2, 4s}}, short_veto), 2) == S::PreparePromotion);
}

TEST_CASE("a vetoed switchover candidate abandons the switchover: the old primary resumes", "[veto][switchover]") {
    GroupBuilder b;
    b.node(1, S::Draining, 0x900).node(2, S::Secondary, 0x900).goal(S::PreparePromotion)
        .node(3, S::Secondary, 0x900);
    auto d = run_vetoed(b, {{2, 100ms}});
    CHECK(goal_for(d, 1) == S::Primary);
    CHECK(goal_for(d, 2) == S::Catchingup);
    CHECK_FALSE(goal_for(d, 3));
    REQUIRE_FALSE(d.assignments.empty());
    CHECK_THAT(d.assignments[0].reason, Catch::Contains("pre_promote hook of the switchover candidate node_2"));
    // Without the veto the switchover keeps waiting for the candidate.
    CHECK(run(b).assignments.empty());
}

TEST_CASE("a promotion the monitor already ordered is not taken back by a late veto", "[veto]") {
    // wait_primary was assigned (the keeper passed its hook); a veto recorded before it
    // is older than the goal and changes nothing.
    GroupBuilder b;
    b.node(1, S::Demoted).dead(5s).node(2, S::PreparePromotion, 0x900).goal(S::WaitPrimary)
        .node(3, S::ReportLsn, 0x900);
    auto d = run_vetoed(b, {{2, 2s}});
    CHECK_FALSE(goal_for(d, 2));
}
