// What-if planning (autoctl perform ... --dry-run): the plan, who would be
// promoted, and what the formation would wait for, without changing anything.
#include "group_builder.h"

#include "libautofailover/operator_commands.h"
#include "libautofailover/what_if.h"

#include <catch2/catch.hpp>

using namespace autofailover;
using namespace autofailover::testing;
using namespace std::chrono_literals;
using S = NodeState;

TEST_CASE("dry-run switchover promotes the best streaming secondary", "[what-if][switchover]") {
    GroupBuilder b;
    b.node(1, S::Primary, 0x5000).streaming_to(2, 0x4000).streaming_to(3, 0x4000)
        .node(2, S::Secondary, 0x4000, 50).node(3, S::Secondary, 0x4000, 80);
    const GroupSnapshot before = b.build();
    const auto plan = plan_switchover(before, FormationSettings{}, b.clock());
    const WhatIf w = what_if(before, FormationSettings{}, b.clock(), plan);
    REQUIRE(w.promoted);
    CHECK(*w.promoted == 3);
    CHECK(w.waiting.empty());
    CHECK(goal_for(w.plan, 1) == S::Draining);
    // the snapshot given is not changed
    CHECK(before.nodes[0].goal_state == S::Primary);
    CHECK(before.nodes[2].lsn == 0x4000);
}

TEST_CASE("dry-run failover of a dead primary elects the most advanced quorum standby", "[what-if][failover]") {
    GroupBuilder b;
    b.node(1, S::Primary, 0x9000).dead(60s).node(2, S::Secondary, 0x7000).node(3, S::Secondary, 0x8000);
    const auto plan = plan_failover(b.build(), FormationSettings{}, b.clock());
    const WhatIf w = what_if(b.build(), FormationSettings{}, b.clock(), plan);
    INFO(describe(plan) << "waiting: " << w.waiting << " after " << w.rounds << " rounds");
    REQUIRE(w.promoted);
    CHECK(*w.promoted == 3);
    CHECK(w.rounds > 0);
    // the old primary may still run until it fenced itself: the promotion waits for that, in simulated time
    CHECK(w.waited > std::chrono::milliseconds(0));
    CHECK_THAT(w.first_wait, Catch::Contains("fences itself"));
}

TEST_CASE("dry-run switchover that cannot complete shows the switchover_timeout abort", "[what-if][switchover]") {
    GroupBuilder b;
    b.node(1, S::Primary, 0x5000).node(2, S::Secondary, 0x4000);
    const auto plan = plan_switchover(b.build(), FormationSettings{}, b.clock());
    const WhatIf w = what_if(b.build(), FormationSettings{}, b.clock(), plan);
    CHECK_FALSE(w.promoted);
    CHECK_THAT(w.first_wait, Catch::Contains("to receive WAL up to"));
    CHECK_THAT(w.waiting, Catch::Contains("abandoned: the switchover did not complete within switchover_timeout"));
    CHECK(w.waited >= FormationSettings{}.timeouts.switchover_timeout);
}

TEST_CASE("dry-run failover names what the election waits for", "[what-if][failover]") {
    // node 3's keeper is silent: a quorum standby's LSN report is missing
    GroupBuilder b;
    b.node(1, S::Primary, 0x9000).dead(60s).node(2, S::Secondary, 0x7000).node(3, S::Secondary, 0x8000).dead(60s);
    const auto plan = plan_failover(b.build(), FormationSettings{}, b.clock());
    const WhatIf w = what_if(b.build(), FormationSettings{}, b.clock(), plan);
    CHECK_FALSE(w.promoted);
    CHECK_FALSE(w.waiting.empty());
    INFO(w.waiting);
    CHECK_THAT(w.waiting, Catch::Contains("node_3"));
}
