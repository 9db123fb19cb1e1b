// Operator commands: what they assign, and the sentences they refuse with.
#include "group_builder.h"

#include "libautofailover/operator_commands.h"

#include <catch2/catch.hpp>

using namespace autofailover;
using namespace autofailover::testing;
using namespace std::chrono_literals;
using S = NodeState;

TEST_CASE("switchover drains the primary and prepares the best secondary", "[operator][switchover]") {
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::Secondary, 0x100, 50).node(3, S::Secondary, 0x100, 80);
    auto d = plan_switchover(b.build(), FormationSettings{}, b.clock());
    CHECK(goal_for(d, 1) == S::Draining);
    CHECK(goal_for(d, 3) == S::PreparePromotion);
    auto targeted = plan_switchover(b.build(), FormationSettings{}, b.clock(), NodeId{2});
    CHECK(goal_for(targeted, 2) == S::PreparePromotion);
}

TEST_CASE("switchover is refused without a healthy candidate, to priority 0, or during a failover", "[operator][switchover]") {
    GroupBuilder none;
    none.node(1, S::Primary).node(2, S::Secondary).dead(3s).node(3, S::Catchingup);
    CHECK_THROWS_WITH(plan_switchover(none.build(), FormationSettings{}, none.clock()),
                      Catch::Contains("no healthy secondary with candidate_priority > 0"));
    GroupBuilder zero;
    zero.node(1, S::Primary).node(2, S::Secondary, 0x100, 0);
    CHECK_THROWS_WITH(plan_switchover(zero.build(), FormationSettings{}, zero.clock(), NodeId{2}),
                      Catch::Contains("candidate_priority is 0"));
    GroupBuilder busy;
    busy.node(1, S::Demoted).node(2, S::ReportLsn).node(3, S::ReportLsn);
    CHECK_THROWS_WITH(plan_switchover(busy.build(), FormationSettings{}, busy.clock()),
                      Catch::Contains("in progress"));
    GroupBuilder unknown;
    unknown.node(1, S::Primary).node(2, S::Secondary);
    CHECK_THROWS_WITH(plan_switchover(unknown.build(), FormationSettings{}, unknown.clock(), NodeId{9}),
                      Catch::Contains("autoctl show state"));
}

TEST_CASE("operator failover with a live primary is a switchover", "[operator][failover]") {
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::Secondary);
    auto d = plan_failover(b.build(), FormationSettings{}, b.clock());
    CHECK(goal_for(d, 1) == S::Draining);
}

TEST_CASE("operator failover of a dead wait_primary needs accept_data_loss", "[operator][failover]") {
    GroupBuilder b;
    b.node(1, S::WaitPrimary).dead(5s).node(2, S::Secondary, 0x100).node(3, S::Catchingup, 0x50);
    CHECK_THROWS_WITH(plan_failover(b.build(), FormationSettings{}, b.clock()), Catch::Contains("accept_data_loss"));
    auto d = plan_failover(b.build(), FormationSettings{}, b.clock(), true);
    CHECK(goal_for(d, 1) == S::Demoted);
    CHECK(goal_for(d, 2) == S::PreparePromotion);
    CHECK(goal_for(d, 3) == S::ReportLsn);
    CHECK_THAT(d.assignments.back().reason + d.assignments.front().reason, Catch::Contains("data loss"));
}

TEST_CASE("operator failover of a dead sync primary starts the normal election", "[operator][failover]") {
    GroupBuilder b;
    b.node(1, S::Primary).dead(5s).node(2, S::Secondary);
    auto d = plan_failover(b.build(), FormationSettings{}, b.clock());
    CHECK(goal_for(d, 1) == S::Demoted);
    CHECK(goal_for(d, 2) == S::ReportLsn);
}

TEST_CASE("accept_data_loss unblocks an election stuck on a missing quorum standby", "[operator][failover]") {
    GroupBuilder b;
    b.node(1, S::Demoted).dead(9s).node(2, S::ReportLsn).node(3, S::ReportLsn).goal(S::ReportLsn).dead(9s);
    CHECK_THROWS(plan_failover(b.build(), FormationSettings{}, b.clock()));
    auto d = plan_failover(b.build(), FormationSettings{}, b.clock(), true);
    CHECK(goal_for(d, 2) == S::PreparePromotion);
}

TEST_CASE("maintenance of a standby waits until the primary no longer counts on it", "[operator][maintenance]") {
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::Secondary).node(3, S::Secondary);
    auto d = plan_start_maintenance(b.build(), FormationSettings{}, b.clock(), 2);
    CHECK(goal_for(d, 2) == S::WaitMaintenance);
    CHECK_FALSE(goal_for(d, 1));
}

TEST_CASE("maintenance of the last quorum standby relaxes the primary first when number_sync_standbys is 0", "[operator][maintenance]") {
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::Secondary);
    auto d = plan_start_maintenance(b.build(), FormationSettings{}, b.clock(), 2);
    CHECK(goal_for(d, 1) == S::WaitPrimary);
    CHECK(goal_for(d, 2) == S::WaitMaintenance);
    FormationSettings strict;
    strict.number_sync_standbys = 1;
    CHECK_THROWS_WITH(plan_start_maintenance(b.build(), strict, b.clock(), 2), Catch::Contains("would block"));
}

TEST_CASE("maintenance of the primary hands over first", "[operator][maintenance]") {
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::Secondary);
    auto d = plan_start_maintenance(b.build(), FormationSettings{}, b.clock(), 1);
    CHECK(goal_for(d, 1) == S::PrepareMaintenance);
    CHECK(goal_for(d, 2) == S::PreparePromotion);
    GroupBuilder alone;
    alone.node(1, S::Primary).node(2, S::Catchingup);
    CHECK_THROWS_WITH(plan_start_maintenance(alone.build(), FormationSettings{}, alone.clock(), 1),
                      Catch::Contains("no healthy secondary"));
}

TEST_CASE("stopping maintenance sends the node back to catching up", "[operator][maintenance]") {
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::Maintenance);
    CHECK(goal_for(plan_stop_maintenance(b.build(), FormationSettings{}, b.clock(), 2), 2) == S::Catchingup);
    CHECK_THROWS_WITH(plan_stop_maintenance(b.build(), FormationSettings{}, b.clock(), 1),
                      Catch::Contains("not in maintenance"));
}

TEST_CASE("changed replication settings make the primary apply them, or are refused", "[operator][settings]") {
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::Secondary).node(3, S::Secondary);
    FormationSettings two;
    two.number_sync_standbys = 2;
    CHECK(goal_for(plan_apply_settings(b.build(), two, b.clock(), "number_sync_standbys"), 1) == S::ApplySettings);
    FormationSettings three;
    three.number_sync_standbys = 3;
    CHECK_THROWS_WITH(plan_apply_settings(b.build(), three, b.clock(), "number_sync_standbys"),
                      Catch::Contains("needs that many quorum standbys"));
}

TEST_CASE("removing a quorum standby makes the converged primary apply a list without it", "[operator][remove]") {
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::Secondary).node(3, S::Secondary);
    auto d = plan_remove_node(b.build(), FormationSettings{}, b.clock(), 3);
    CHECK(goal_for(d, 3) == S::Dropped);
    CHECK(goal_for(d, 1) == S::ApplySettings);
    // The last standby: nothing left to list, synchronous replication off (number_sync_standbys 0).
    GroupBuilder last;
    last.node(1, S::Primary).node(2, S::Secondary);
    CHECK(goal_for(plan_remove_node(last.build(), FormationSettings{}, last.clock(), 2), 1) == S::WaitPrimary);
    // A standby outside the quorum is never listed: the primary has nothing to change.
    GroupBuilder async;
    async.node(1, S::Primary).node(2, S::Secondary).node(3, S::Secondary, 0x3000000, 50, false);
    CHECK_FALSE(goal_for(plan_remove_node(async.build(), FormationSettings{}, async.clock(), 3), 1));
}

TEST_CASE("removing a standby drops it, removing the sync primary starts an election", "[operator][remove]") {
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::Secondary).node(3, S::Secondary);
    CHECK(goal_for(plan_remove_node(b.build(), FormationSettings{}, b.clock(), 3), 3) == S::Dropped);
    auto d = plan_remove_node(b.build(), FormationSettings{}, b.clock(), 1);
    CHECK(goal_for(d, 1) == S::Dropped);
    CHECK(goal_for(d, 2) == S::ReportLsn);
    CHECK(goal_for(d, 3) == S::ReportLsn);
    GroupBuilder async;
    async.node(1, S::WaitPrimary).node(2, S::Secondary);
    CHECK_THROWS_WITH(plan_remove_node(async.build(), FormationSettings{}, async.clock(), 1),
                      Catch::Contains("perform_switchover first"));
}
