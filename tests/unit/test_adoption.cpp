// A new, empty monitor adopting a running formation (docs/monitor-ha.md, M6):
// which goal each adopted node gets, which claims are refused, and the election
// guard while the primary is not adopted yet.
#include "group_builder.h"

#include "libautofailover/decide.h"
#include "libautofailover/operator_commands.h"

#include <catch2/catch.hpp>

using namespace autofailover;
using namespace autofailover::testing;
using namespace std::chrono_literals;
using S = NodeState;

TEST_CASE("an adopted primary stays the primary it runs as", "[adoption]") {
    GroupBuilder empty;
    CHECK(adoption_assignment(empty.build(), 1, S::Primary, 1).goal == S::Primary);
    CHECK(adoption_assignment(empty.build(), 1, S::WaitPrimary, 1).goal == S::WaitPrimary);
    CHECK(adoption_assignment(empty.build(), 1, S::Single, 1).goal == S::Single);
    GroupBuilder with_standby;
    with_standby.node(2, S::Catchingup);
    CHECK(adoption_assignment(with_standby.build(), 1, S::Primary, 1).goal == S::Primary);
}

TEST_CASE("an adopted standby is catchingup until the primary reports it streaming", "[adoption]") {
    GroupBuilder b;
    b.node(1, S::Primary);
    CHECK(adoption_assignment(b.build(), 2, S::Secondary, 1).goal == S::Catchingup);
    CHECK(adoption_assignment(b.build(), 2, S::Catchingup, 1).goal == S::Catchingup);
    GroupBuilder no_primary;
    CHECK(adoption_assignment(no_primary.build(), 2, S::Secondary, 1).goal == S::Catchingup);
}

TEST_CASE("a second node claiming to be primary is refused", "[adoption]") {
    GroupBuilder b;
    b.node(1, S::Primary);
    CHECK_THROWS_AS(adoption_assignment(b.build(), 2, S::Primary, 1), OperatorError);
    CHECK_THROWS_WITH(adoption_assignment(b.build(), 2, S::WaitPrimary, 1),
                      Catch::Contains("already has a primary"));
    GroupBuilder draining;
    draining.node(1, S::Draining);
    CHECK_THROWS_AS(adoption_assignment(draining.build(), 2, S::Single, 1), OperatorError);
}

TEST_CASE("a primary claim older than an adopted standby's timeline is refused", "[adoption]") {
    GroupBuilder b;
    b.node(2, S::Catchingup).timeline(3);
    CHECK_THROWS_WITH(adoption_assignment(b.build(), 1, S::Primary, 2), Catch::Contains("timeline"));
    CHECK(adoption_assignment(b.build(), 1, S::Primary, 3).goal == S::Primary);
    GroupBuilder primary;
    primary.node(1, S::Primary).timeline(2);
    CHECK_THROWS_WITH(adoption_assignment(primary.build(), 2, S::Secondary, 3), Catch::Contains("timeline"));
}

TEST_CASE("a node in the middle of a transition is not adopted", "[adoption]") {
    GroupBuilder b;
    for (S s : {S::Init, S::Draining, S::Demoted, S::ReportLsn, S::PreparePromotion, S::WaitStandby,
                S::Maintenance, S::JoinSecondary})
        CHECK_THROWS_AS(adoption_assignment(b.build(), 2, s, 1), OperatorError);
}

TEST_CASE("standbys adopted before their primary start no election during the adoption grace", "[adoption][election]") {
    GroupBuilder b;
    b.node(2, S::Secondary).goal(S::Catchingup).node(3, S::Secondary).goal(S::Catchingup);
    GroupSnapshot group = b.build();
    group.adoption_deadline = b.clock().now + 10s;
    Decision d = decide(group, FormationSettings{}, b.clock());
    INFO(describe(d));
    CHECK(d.assignments.empty());
    CHECK_THAT(d.waiting_reason, Catch::Contains("adoption"));

    // Without the grace (the behaviour this guards against) they would freeze for an election.
    group.adoption_deadline.reset();
    Decision without = decide(group, FormationSettings{}, b.clock());
    CHECK(goal_for(without, 2) == S::ReportLsn);
}

TEST_CASE("after the adoption grace, the election runs but the promotion waits for the unknown primary to fence",
          "[adoption][election]") {
    FormationSettings settings;
    const auto fence_wait = settings.timeouts.network_partition_timeout + settings.timeouts.fencing_margin;
    GroupBuilder b;
    b.node(2, S::PreparePromotion).goal_assigned(test_clock().now - 500ms);
    GroupSnapshot group = b.build();
    group.adoption_deadline = b.clock().now - 1s;
    Decision early = decide(group, settings, b.clock());
    INFO(describe(early));
    CHECK_FALSE(goal_for(early, 2).has_value());
    CHECK_THAT(early.waiting_reason, Catch::Contains("never adopted"));

    group.nodes[0].goal_assigned_at = b.clock().now - fence_wait - 1ms;
    Decision later = decide(group, settings, b.clock());
    CHECK(goal_for(later, 2) == S::WaitPrimary);
}

TEST_CASE("an adopted primary with a standby not yet confirmed relaxes synchronous replication, no failover",
          "[adoption][sync]") {
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::Secondary).goal(S::Catchingup);
    Decision d = decide(b.build(), FormationSettings{}, b.clock());
    INFO(describe(d));
    CHECK(goal_for(d, 1) == S::WaitPrimary);
    CHECK_FALSE(goal_for(d, 2).has_value());
}

TEST_CASE("a lone adopted standby is not promoted alone before its never-adopted primary has fenced",
          "[adoption][election]") {
    FormationSettings settings;
    const auto fence_wait = settings.timeouts.network_partition_timeout + settings.timeouts.fencing_margin;
    GroupBuilder b;
    b.node(2, S::ReportLsn).goal_assigned(test_clock().now - 500ms);
    GroupSnapshot group = b.build();
    group.adoption_deadline = b.clock().now - 1s;
    Decision early = decide(group, settings, b.clock());
    INFO(describe(early));
    // Not run as a primary: at most elected, and then the election's own fence wait applies.
    CHECK(goal_for(early, 2) != S::Single);
    CHECK(goal_for(early, 2) != S::WaitPrimary);

    group.adoption_deadline = b.clock().now + 1s;  // grace still running
    group.nodes[0].goal_assigned_at = b.clock().now - fence_wait - 1s;
    CHECK_FALSE(goal_for(decide(group, settings, b.clock()), 2).has_value());

    group.adoption_deadline = b.clock().now - 1s;  // grace over, fenced by now
    CHECK(goal_for(decide(group, settings, b.clock()), 2) == S::Single);

    // Without an adoption (the existing rule): a lone frozen standby runs as single at once.
    group.adoption_deadline.reset();
    group.nodes[0].goal_assigned_at = b.clock().now - 500ms;
    CHECK(goal_for(decide(group, settings, b.clock()), 2) == S::Single);
}
