// The early freeze (libautofailover/election.cpp, primary_suspect_freeze; docs/settings.md "Why these defaults"):
// a primary whose keeper is silent for primary_suspect_timeout and whose probes fail has its secondaries frozen
// and a candidate elected, so the old primary's fencing wait runs while the monitor waits for the declared
// failure. Nobody is promoted on a suspicion; when the primary reports again the standbys stream again.
#include "group_builder.h"

#include "libautofailover/decide.h"

#include <catch2/catch.hpp>

#include <optional>

using namespace autofailover;
using namespace autofailover::testing;
using namespace std::chrono_literals;
using S = NodeState;

namespace {


bool promotes_anyone(const Decision& d) {
    for (const auto& a : d.assignments)
        if (a.goal == S::WaitPrimary || a.goal == S::Demoted || a.goal == S::Single) return true;
    return false;
}

}  // namespace

TEST_CASE("a suspected synchronous primary keeps its goal while its secondaries freeze", "[suspicion]") {
    GroupBuilder b;  // keeper silent 1.2 s (>= primary_suspect_timeout 1 s, < unhealthy 2.5 s), probes failing
    b.node(1, S::Primary).dead(1200ms).node(2, S::Secondary).node(3, S::Secondary);
    const auto d = run(b);
    CHECK_FALSE(goal_for(d, 1));
    CHECK(goal_for(d, 2) == S::ReportLsn);
    CHECK(goal_for(d, 3) == S::ReportLsn);
    CHECK_FALSE(promotes_anyone(d));
    for (const auto& a : d.assignments) CHECK(a.rule == "primary_suspect_freeze");
}

TEST_CASE("no suspicion without both a silent keeper and a failed probe newer than its report", "[suspicion]") {
    GroupBuilder short_silence;  // below primary_suspect_timeout
    short_silence.node(1, S::Primary).dead(800ms).node(2, S::Secondary);
    CHECK(run(short_silence).assignments.empty());
    GroupBuilder answers;  // keeper silent, Postgres answers
    answers.node(1, S::Primary).keeper_silent(2s).node(2, S::Secondary);
    CHECK(run(answers).assignments.empty());
    GroupBuilder old_probe;  // the failed probe is older than the last report
    old_probe.node(1, S::Primary).node(2, S::Secondary);
    auto group = old_probe.build();
    group.nodes[0].last_report = old_probe.clock().now - 1500ms;
    group.nodes[0].health = Health::Bad;
    group.nodes[0].last_health_check = old_probe.clock().now - 1600ms;
    CHECK(decide(group, FormationSettings{}, old_probe.clock()).assignments.empty());
}

TEST_CASE("no early freeze for a primary without synchronous replication, or when the setting is off", "[suspicion]") {
    GroupBuilder async;
    async.node(1, S::WaitPrimary).dead(1500ms).node(2, S::Catchingup);
    CHECK_FALSE(goal_for(run(async), 2));
    FormationSettings off;
    off.timeouts.primary_suspect_timeout = off.timeouts.node_considered_unhealthy_timeout;
    GroupBuilder b;
    b.node(1, S::Primary).dead(2s).node(2, S::Secondary);
    CHECK(run(b, off).assignments.empty());
}

TEST_CASE("once the secondaries froze, the most advanced is elected but not promoted while only suspected",
          "[suspicion]") {
    GroupBuilder b;
    b.node(1, S::Primary).dead(1500ms).node(2, S::ReportLsn, 0x3000000).node(3, S::ReportLsn, 0x3000100);
    const auto d = run(b);
    CHECK(goal_for(d, 3) == S::PreparePromotion);
    CHECK_FALSE(goal_for(d, 2));
    CHECK_FALSE(promotes_anyone(d));

    GroupBuilder waiting;  // elected long ago, primary still only suspected: nobody is promoted
    waiting.node(1, S::Primary).dead(2400ms).node(2, S::ReportLsn).node(3, S::PreparePromotion).goal_assigned(
        test_clock().now - 5s);
    const auto w = run(waiting);
    CHECK(w.assignments.empty());
    CHECK_THAT(w.waiting_reason, Catch::Contains("promoted only if node_1 is declared failed"));
}

TEST_CASE("a suspicion never fast-forwards: a less advanced preferred candidate waits for the declared failure",
          "[suspicion]") {
    GroupBuilder b;
    b.node(1, S::Primary).dead(1500ms).node(2, S::ReportLsn, 0x3000000, 90).node(3, S::ReportLsn, 0x3000100, 50);
    const auto d = run(b);
    CHECK(d.assignments.empty());
    CHECK_THAT(d.waiting_reason, Catch::Contains("no early election"));
}

TEST_CASE("a standby that still streams from the suspected primary keeps the freeze from electing", "[suspicion]") {
    GroupBuilder b;  // node_3 is catchingup: it is not frozen (a thaw could not tell what it was) and renews the lease
    b.node(1, S::Primary).dead(1500ms).node(2, S::ReportLsn).node(3, S::Catchingup);
    const auto d = run(b);
    CHECK(d.assignments.empty());
    CHECK_THAT(d.waiting_reason, Catch::Contains("still streams from it"));
}

TEST_CASE("the declared failure keeps the candidate elected under suspicion, and its fencing wait counts from then",
          "[suspicion][fencing]") {
    // Elected 1 s ago while suspected; now the primary is unhealthy and surely fenced on the monitor side.
    GroupBuilder early;
    early.node(1, S::Primary).dead(2600ms).node(2, S::ReportLsn).node(3, S::PreparePromotion).goal_assigned(
        test_clock().now - 1s);
    const auto w = run(early);
    CHECK(goal_for(w, 1) == S::Demoted);
    CHECK_FALSE(goal_for(w, 3));  // not revoked, not yet promoted
    CHECK_THAT(w.waiting_reason, Catch::Contains("fences itself"));
    // Elected 2.5 s ago (network_partition_timeout + fencing_margin): promoted in the pass that declares the failure.
    GroupBuilder late;
    late.node(1, S::Primary).dead(2600ms).node(2, S::ReportLsn).node(3, S::PreparePromotion).goal_assigned(
        test_clock().now - 2500ms);
    const auto d = run(late);
    CHECK(goal_for(d, 1) == S::Demoted);
    CHECK(goal_for(d, 3) == S::WaitPrimary);
    // A switchover candidate (streaming, goal prepare_promotion, primary draining) is still frozen by a failure.
    GroupBuilder switchover;
    switchover.node(1, S::Draining).goal(S::Draining).dead(3s).node(2, S::PreparePromotion);
    auto group = switchover.build();
    group.nodes[0].reported_state = S::Primary;
    group.nodes[0].pg_is_running = true;
    group.nodes[1].reported_state = S::Secondary;
    const auto s = decide(group, FormationSettings{}, switchover.clock());
    INFO(describe(s));
    CHECK(goal_for(s, 2) == S::ReportLsn);
}

TEST_CASE("when the suspected primary reports again its frozen standbys and candidate are secondaries again",
          "[suspicion]") {
    GroupBuilder b;
    b.node(1, S::Primary).goal_assigned(test_clock().now - 60s).node(2, S::ReportLsn).node(3, S::PreparePromotion);
    const auto d = run(b);
    CHECK(goal_for(d, 2) == S::Secondary);
    CHECK(goal_for(d, 3) == S::Secondary);
    // The primary keeps synchronous replication on (it re-applies its list at most once).
    CHECK(goal_for(d, 1) != S::WaitPrimary);
    GroupBuilder probe_ok;  // keeper still silent but Postgres answers: thaw too (no failover will come)
    probe_ok.node(1, S::Primary).keeper_silent(2s).goal_assigned(test_clock().now - 60s).node(2, S::ReportLsn);
    CHECK(goal_for(run(probe_ok), 2) == S::Secondary);
}

TEST_CASE("after a failover the standbys frozen by the election follow the new primary, not a thaw", "[suspicion]") {
    GroupBuilder b;  // node_2 promoted (goal wait_primary assigned after node_3 froze)
    b.node(1, S::Demoted).dead(10s).node(2, S::WaitPrimary).goal_assigned(test_clock().now - 500ms)
        .node(3, S::ReportLsn).goal_assigned(test_clock().now - 3s);
    CHECK(goal_for(run(b), 3) == S::Catchingup);
}

// The payoff, in the pure core: a primary crashes, its keeper last reported at t = 0, its probes fail from
// t = 0.3 s; the standbys' keepers act on their goals within one 50 ms step. With the early freeze the candidate
// is promoted network_partition_timeout + fencing_margin after the suspicion (~1 + 2.5 s); without it, that long
// after the declared failure (~2.5 + 2.5 s).
namespace {

std::optional<std::chrono::milliseconds> promotion_time(const FormationSettings& settings) {
    const MonitorClock start = test_clock();
    GroupBuilder b(start);
    b.node(1, S::Primary).node(2, S::Secondary, 0x3000000).node(3, S::Secondary, 0x3000100);
    GroupSnapshot group = b.build();
    group.nodes[0].last_report = start.now;
    for (auto& n : group.nodes) n.goal_assigned_at = start.now - 60s;
    for (auto t = 0ms; t <= 10000ms; t += 50ms) {
        MonitorClock clock = start;
        clock.now = start.now + t;
        if (t >= 300ms) {
            group.nodes[0].health = Health::Bad;
            group.nodes[0].last_health_check = clock.now;
        }
        const Decision d = decide(group, settings, clock);
        apply(group, d, clock.now);
        for (const auto& a : d.assignments)
            if (a.goal == S::WaitPrimary) return t;
        for (std::size_t i = 1; i < group.nodes.size(); ++i) {  // the standbys' keepers converge and report
            group.nodes[i].reported_state = group.nodes[i].goal_state;
            group.nodes[i].last_report = clock.now;
        }
    }
    return std::nullopt;
}

}  // namespace

TEST_CASE("a crash is failed over ~1.5 s sooner with the early freeze, never before the fencing wait", "[suspicion]") {
    const FormationSettings defaults;
    const auto with = promotion_time(defaults);
    FormationSettings off;
    off.timeouts.primary_suspect_timeout = off.timeouts.node_considered_unhealthy_timeout;
    const auto without = promotion_time(off);
    REQUIRE(with);
    REQUIRE(without);
    INFO("with " << with->count() << " ms, without " << without->count() << " ms");
    const auto fence_wait = defaults.timeouts.network_partition_timeout + defaults.timeouts.fencing_margin;
    CHECK(*with >= defaults.timeouts.primary_suspect_timeout + fence_wait);
    CHECK(*with <= defaults.timeouts.primary_suspect_timeout + fence_wait + 200ms);
    CHECK(*without >= defaults.timeouts.node_considered_unhealthy_timeout + fence_wait);
    CHECK(*without - *with >= 1400ms);
}

TEST_CASE("early, a report_lsn stored before the node was told to freeze again does not count", "[suspicion]") {
    // node_2's last report (100 ms ago) predates its report_lsn goal (50 ms ago): it may have been a report sent
    // before it acted on a thaw, and it may stream again since. With two quorum standbys and ANY 1 both must count.
    GroupBuilder b;
    b.node(1, S::Primary).dead(1500ms).node(2, S::ReportLsn).goal_assigned(test_clock().now - 50ms).node(3, S::ReportLsn);
    const auto d = run(b);
    CHECK(d.assignments.empty());
    CHECK_THAT(d.waiting_reason, Catch::Contains("1 of 2 quorum standbys reported"));
}

TEST_CASE("standbys frozen before the primary's goal was assigned are not thawed to secondary", "[suspicion]") {
    // A primary adopted by a new monitor (M6) while its standbys froze for an election, or an operator command
    // that changed its goal during the freeze: they follow it as catchingup and become secondaries on its word.
    GroupBuilder b;
    b.node(1, S::Primary).goal_assigned(test_clock().now - 500ms).node(2, S::ReportLsn).goal_assigned(
        test_clock().now - 3s).node(3, S::PreparePromotion).goal_assigned(test_clock().now - 2s);
    const auto d = run(b);
    CHECK(goal_for(d, 2) == S::Catchingup);
    CHECK(goal_for(d, 3) == S::Catchingup);
}
