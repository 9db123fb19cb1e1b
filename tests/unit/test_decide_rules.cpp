// One example per rule of decide(), named after the situation.
#include "group_builder.h"

#include "libautofailover/decide.h"

#include <catch2/catch.hpp>

using namespace autofailover;
using namespace autofailover::testing;
using namespace std::chrono_literals;
using S = NodeState;

namespace {


}  // namespace

// ---- health -----------------------------------------------------------------

TEST_CASE("a keeper reporting Postgres down makes its node unhealthy at once", "[health]") {
    GroupBuilder b;
    b.node(1, S::Primary).pg_down();
    CHECK(node_is_unhealthy(b.build().nodes[0], FormationSettings{}, b.clock()));
}

TEST_CASE("a silent keeper with failing probes is unhealthy only after node_considered_unhealthy_timeout", "[health]") {
    FormationSettings settings;
    GroupBuilder b;
    b.node(1, S::Secondary).dead(2s).node(2, S::Secondary).dead(3s);
    auto g = b.build();
    CHECK_FALSE(node_is_unhealthy(g.nodes[0], settings, b.clock()));
    CHECK(node_is_unhealthy(g.nodes[1], settings, b.clock()));
    CHECK_FALSE(keeper_is_reporting(g.nodes[1], settings, b.clock()));
}

TEST_CASE("a silent keeper whose Postgres answers the probes is healthy", "[health]") {
    GroupBuilder b;
    b.node(1, S::Primary).keeper_silent(60s);
    CHECK_FALSE(node_is_unhealthy(b.build().nodes[0], FormationSettings{}, b.clock()));
}

TEST_CASE("failing probes condemn nobody during the monitor's startup grace period", "[health]") {
    MonitorClock clock = test_clock();
    clock.now = clock.monitor_started + 3s;  // grace is 5 s
    GroupBuilder b(clock);
    b.node(1, S::Primary).dead(60s);
    CHECK_FALSE(node_is_unhealthy(b.build().nodes[0], FormationSettings{}, clock));
}

TEST_CASE("a failed probe older than the keeper's last report does not condemn", "[health]") {
    GroupBuilder b;
    b.node(1, S::Secondary).dead(3s);
    auto g = b.build();
    g.nodes[0].last_health_check = *g.nodes[0].last_report - 1s;
    CHECK_FALSE(node_is_unhealthy(g.nodes[0], FormationSettings{}, b.clock()));
}

// ---- registration and standby life cycle ------------------------------------

TEST_CASE("the first node of a group becomes single, later ones wait as standbys", "[register]") {
    GroupSnapshot empty;
    CHECK(initial_assignment(empty, 1, 50).goal == S::Single);
    CHECK(initial_assignment(empty, 1, 0).goal == S::ReportLsn);
    auto one = GroupBuilder().node(1, S::Single).build();
    CHECK(initial_assignment(one, 2, 50).goal == S::WaitStandby);
    CHECK(initial_assignment(one, 2, 0).goal == S::WaitStandby);
}

TEST_CASE("a lone priority-0 node waits and becomes single once its priority is raised", "[register]") {
    GroupBuilder waiting;
    waiting.node(1, S::ReportLsn, 0, 0);
    auto d = run(waiting);
    CHECK(d.assignments.empty());
    CHECK_THAT(d.waiting_reason, Catch::Contains("candidate_priority 0"));
    GroupBuilder raised;
    raised.node(1, S::ReportLsn, 0, 50);
    CHECK(goal_for(run(raised), 1) == S::Single);
}

TEST_CASE("a single primary moves to wait_primary when a standby registers", "[standby]") {
    GroupBuilder b;
    b.node(1, S::Single).node(2, S::WaitStandby);
    auto d = run(b);
    CHECK(goal_for(d, 1) == S::WaitPrimary);
    CHECK_FALSE(goal_for(d, 2));  // not before the primary accepts standbys
}

TEST_CASE("a waiting standby is let in once the primary runs as wait_primary", "[standby]") {
    GroupBuilder b;
    b.node(1, S::WaitPrimary).node(2, S::WaitStandby);
    CHECK(goal_for(run(b), 2) == S::Catchingup);
}

TEST_CASE("a catching-up standby within the threshold on the primary's timeline becomes secondary", "[standby]") {
    FormationSettings settings;
    const Lsn close_lsn = 0x5000000 - settings.enable_sync_wal_threshold;
    GroupBuilder close;
    close.node(1, S::WaitPrimary, 0x5000000).streaming_to(2, close_lsn).node(2, S::Catchingup, close_lsn);
    CHECK(goal_for(run(close, settings), 2) == S::Secondary);

    // The primary's view of the flush LSN counts, not the standby's own report.
    GroupBuilder far;
    far.node(1, S::WaitPrimary, 0x5000000).streaming_to(2, close_lsn - 1).node(2, S::Catchingup, 0x5000000);
    CHECK_FALSE(goal_for(run(far, settings), 2));

    GroupBuilder other_timeline;
    other_timeline.node(1, S::WaitPrimary, 0x5000000).timeline(2).streaming_to(2, 0x5000000)
        .node(2, S::Catchingup, 0x5000000);
    CHECK_FALSE(goal_for(run(other_timeline, settings), 2));

    GroupBuilder unhealthy;
    unhealthy.node(1, S::WaitPrimary, 0x5000000).streaming_to(2, 0x5000000).node(2, S::Catchingup, 0x5000000).pg_down();
    CHECK_FALSE(goal_for(run(unhealthy, settings), 2));
}

TEST_CASE("a standby the primary does not see streaming stays catchingup, whatever it reports", "[standby][security]") {
    // A registered node that reports catchingup with a made-up LSN (security review #3):
    // it never becomes a secondary, so it never enters synchronous_standby_names.
    GroupBuilder fake;
    fake.node(1, S::WaitPrimary, 0x5000000).node(2, S::Catchingup, 0xFF00000000);
    auto d = run(fake);
    CHECK_FALSE(goal_for(d, 2));
    CHECK_FALSE(goal_for(d, 1));
    CHECK_THAT(d.waiting_reason, Catch::Contains("node_2 reports it caught up, but the primary node_1 does not see it"));

    // The primary sees another standby only.
    GroupBuilder other;
    other.node(1, S::WaitPrimary, 0x5000000).streaming_to(3, 0x5000000).node(2, S::Catchingup, 0x5000000)
        .node(3, S::Catchingup, 0x5000000);
    auto d2 = run(other);
    CHECK_FALSE(goal_for(d2, 2));
    CHECK(goal_for(d2, 3) == S::Secondary);
}

TEST_CASE("a standby reported streaming by a node that is not the writable primary is not confirmed",
          "[standby][security]") {
    // Only the primary's pg_stat_replication counts: another standby's list (or a stale list
    // of a node that is not the primary) confirms nothing.
    GroupBuilder b;
    b.node(1, S::WaitPrimary, 0x5000000).node(3, S::Catchingup, 0x5000000).streaming_to(2, 0x5000000)
        .node(2, S::Catchingup, 0x5000000);
    auto d = run(b);
    CHECK_FALSE(goal_for(d, 2));
}

TEST_CASE("wait_primary turns synchronous replication on once a quorum standby is secondary", "[sync]") {
    GroupBuilder b;
    b.node(1, S::WaitPrimary).node(2, S::Secondary);
    CHECK(goal_for(run(b), 1) == S::Primary);
}

TEST_CASE("an asynchronous secondary does not turn synchronous replication on", "[sync]") {
    GroupBuilder b;
    b.node(1, S::WaitPrimary).node(2, S::Secondary, 0x3000000, 50, false);
    CHECK_FALSE(goal_for(run(b), 1));
}

TEST_CASE("a quorum standby catching up while the primary is primary makes it apply settings", "[sync]") {
    GroupBuilder b;
    b.node(1, S::Primary).streaming_to(2, 0x3000000).streaming_to(3, 0x3000000).node(2, S::Secondary)
        .node(3, S::Catchingup);
    auto d = run(b);
    CHECK(goal_for(d, 3) == S::Secondary);
    CHECK(goal_for(d, 1) == S::ApplySettings);
}

TEST_CASE("a primary that applied its settings returns to primary", "[sync]") {
    GroupBuilder b;
    b.node(1, S::ApplySettings).node(2, S::Secondary);
    CHECK(goal_for(run(b), 1) == S::Primary);
}

TEST_CASE("a primary reporting the legacy join_primary state goes back to primary", "[sync]") {
    GroupBuilder b;
    b.node(1, S::JoinPrimary).node(2, S::Secondary);
    CHECK(goal_for(run(b), 1) == S::Primary);
}

TEST_CASE("an unhealthy secondary is no longer a failover candidate", "[standby]") {
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::Secondary).dead(3s).node(3, S::Secondary);
    auto d = run(b);
    CHECK(goal_for(d, 2) == S::Catchingup);
    CHECK_FALSE(goal_for(d, 1));  // node 3 still acknowledges commits
}

TEST_CASE("losing the last quorum secondary with number_sync_standbys 0 relaxes synchronous replication", "[sync]") {
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::Secondary).dead(3s).node(3, S::Secondary, 0x3000000, 50, false);
    auto d = run(b);
    CHECK(goal_for(d, 2) == S::Catchingup);
    CHECK(goal_for(d, 1) == S::WaitPrimary);
}

TEST_CASE("losing the last quorum secondary with number_sync_standbys 1 blocks writes by design", "[sync]") {
    FormationSettings settings;
    settings.number_sync_standbys = 1;
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::Secondary).dead(3s);
    auto d = run(b, settings);
    CHECK(goal_for(d, 2) == S::Catchingup);
    CHECK_FALSE(goal_for(d, 1));
    CHECK_THAT(d.waiting_reason, Catch::Contains("commits block"));
}

TEST_CASE("the primary never relaxes synchronous replication while a node is being promoted", "[sync]") {
    GroupBuilder b;
    b.node(1, S::Primary).streaming_to(2, 0x3000000).node(2, S::Catchingup).node(3, S::ReportLsn);
    auto d = run(b);
    CHECK(goal_for(d, 1) != S::WaitPrimary);
}

TEST_CASE("a draining primary is never relaxed to wait_primary, whatever its standbys do", "[sync][switchover]") {
    GroupBuilder b;
    b.node(1, S::Primary).goal(S::Draining).node(2, S::Secondary).goal(S::PreparePromotion).node(3, S::Secondary).dead(3s);
    auto d = run(b);
    CHECK(goal_for(d, 1) != S::WaitPrimary);
}

TEST_CASE("the primary left alone after removals runs as single", "[standby]") {
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::Secondary).goal(S::Dropped);
    CHECK(goal_for(run(b), 1) == S::Single);
}

// ---- failover ----------------------------------------------------------------

TEST_CASE("a primary whose keeper is silent but Postgres answers is not failed over", "[failover]") {
    GroupBuilder b;
    b.node(1, S::Primary).keeper_silent(60s).node(2, S::Secondary).node(3, S::Secondary);
    auto d = run(b);
    CHECK(d.assignments.empty());
    CHECK_THAT(d.waiting_reason, Catch::Contains("answers the probes"));
}

TEST_CASE("a failed synchronous primary is demoted and its standbys freeze to report their LSN", "[failover]") {
    GroupBuilder b;
    b.node(1, S::Primary).dead(3s).node(2, S::Secondary).node(3, S::Catchingup);
    auto d = run(b);
    CHECK(goal_for(d, 1) == S::Demoted);
    CHECK(goal_for(d, 2) == S::ReportLsn);
    CHECK(goal_for(d, 3) == S::ReportLsn);
}

TEST_CASE("an unhealthy primary is not failed over before network_partition_timeout + fencing_margin", "[failover]") {
    FormationSettings settings;
    settings.timeouts.node_considered_unhealthy_timeout = 1000ms;
    GroupBuilder b;
    b.node(1, S::Primary).dead(2000ms).node(2, S::Secondary);  // 2.0 s < 1.5 s + 1.0 s
    auto d = run(b, settings);
    CHECK(d.assignments.empty());
    CHECK_THAT(d.waiting_reason, Catch::Contains("fenced"));
    GroupBuilder later;
    later.node(1, S::Primary).dead(2600ms).node(2, S::Secondary);
    CHECK(goal_for(run(later, settings), 1) == S::Demoted);
}

TEST_CASE("a primary whose keeper reports Postgres down is failed over without waiting for fencing", "[failover]") {
    GroupBuilder b;
    b.node(1, S::Primary).pg_down().node(2, S::Secondary);
    CHECK(goal_for(run(b), 1) == S::Demoted);
}

TEST_CASE("a failed primary that ran without synchronous replication is not failed over automatically", "[failover]") {
    GroupBuilder b;
    b.node(1, S::WaitPrimary).dead(3s).node(2, S::Secondary);
    auto d = run(b);
    CHECK(d.assignments.empty());
    CHECK_THAT(d.waiting_reason, Catch::Contains("accept_data_loss"));
}

TEST_CASE("a failed primary already told to relax is not failed over automatically", "[failover]") {
    // Its keeper may have turned synchronous replication off without reporting it.
    GroupBuilder b;
    b.node(1, S::Primary).goal(S::WaitPrimary).dead(3s).node(2, S::Secondary);
    CHECK(run(b).assignments.empty());
}

TEST_CASE("the election waits for k - n + 1 quorum standbys and names the missing ones", "[election]") {
    GroupBuilder b;  // k = 2 quorum standbys, n = 1: both must report
    b.node(1, S::Primary).goal(S::Demoted).dead(5s).node(2, S::ReportLsn).node(3, S::Secondary).goal(S::ReportLsn).dead(3s);
    auto d = run(b);
    CHECK(d.assignments.empty());
    CHECK_THAT(d.waiting_reason, Catch::Contains("1 of 2 quorum standbys"));
    CHECK_THAT(d.waiting_reason, Catch::Contains("node_3 (keeper silent)"));
}

TEST_CASE("with number_sync_standbys 2 the election needs k - 1 reports", "[election]") {
    FormationSettings settings;
    settings.number_sync_standbys = 2;
    GroupBuilder b;  // k = 3, n = 2: 2 reports suffice
    b.node(1, S::Primary).goal(S::Demoted).dead(5s)
        .node(2, S::ReportLsn, 0x100)
        .node(3, S::ReportLsn, 0x200)
        .node(4, S::Secondary).goal(S::ReportLsn).dead(3s);
    CHECK(goal_for(run(b, settings), 3) == S::PreparePromotion);
}

TEST_CASE("the election picks the highest priority, then the highest LSN, then the lowest id", "[election]") {
    GroupBuilder by_priority;
    by_priority.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn, 0x900, 50).node(3, S::ReportLsn, 0x100, 90);
    auto d = run(by_priority);
    CHECK(goal_for(d, 3) == S::FastForward);  // higher priority, but behind: fetches first
    CHECK_FALSE(goal_for(d, 2));

    GroupBuilder by_lsn;
    by_lsn.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn, 0x100).node(3, S::ReportLsn, 0x900);
    CHECK(goal_for(run(by_lsn), 3) == S::PreparePromotion);

    GroupBuilder by_id;
    by_id.node(1, S::Demoted).dead(5s).node(3, S::ReportLsn, 0x900).node(2, S::ReportLsn, 0x900);
    CHECK(goal_for(run(by_id), 2) == S::PreparePromotion);
}

TEST_CASE("the timeline ranks before the LSN", "[election]") {
    GroupBuilder b;
    b.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn, 0x900).node(3, S::ReportLsn, 0x100).timeline(2);
    CHECK(goal_for(run(b), 3) == S::PreparePromotion);
}

TEST_CASE("a candidate behind the most advanced standby fast-forwards from it", "[election]") {
    GroupBuilder b;
    b.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn, 0x900, 10).node(3, S::ReportLsn, 0x100, 90)
        .node(4, S::ReportLsn, 0x500, 10);
    auto g = b.build();
    CHECK(goal_for(run(b), 3) == S::FastForward);
    CHECK(choose_fast_forward_source(g, 3) == NodeId{2});
}

TEST_CASE("the election waits when the only holder of the newest WAL is down", "[election]") {
    GroupBuilder b;
    b.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn, 0x900, 0).pg_down().node(3, S::ReportLsn, 0x100, 90);
    auto d = run(b);
    CHECK(d.assignments.empty());
    CHECK_THAT(d.waiting_reason, Catch::Contains("must fetch WAL"));
}

TEST_CASE("a candidate_priority 0 node is never elected, even when most advanced", "[election]") {
    GroupBuilder b;
    b.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn, 0x900, 0).node(3, S::ReportLsn, 0x100, 1);
    auto d = run(b);
    CHECK_FALSE(goal_for(d, 2));
    CHECK(goal_for(d, 3) == S::FastForward);
    GroupBuilder none;
    none.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn, 0x900, 0);
    auto w = run(none);
    CHECK(w.assignments.empty());
    CHECK_THAT(w.waiting_reason, Catch::Contains("no standby can be promoted"));
}

TEST_CASE("a node outside the quorum is not elected while a quorum candidate exists", "[election]") {
    GroupBuilder b;
    b.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn, 0x900, 100, false).node(3, S::ReportLsn, 0x100, 10);
    auto d = run(b);
    CHECK_FALSE(goal_for(d, 2));
    CHECK(goal_for(d, 3) == S::FastForward);
}

TEST_CASE("a node outside the quorum is elected only with number_sync_standbys 0 and no quorum candidate", "[election]") {
    GroupBuilder b;
    b.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn, 0x900, 50, false).node(3, S::ReportLsn, 0x100, 0);
    CHECK(goal_for(run(b), 2) == S::PreparePromotion);
    FormationSettings strict;
    strict.number_sync_standbys = 1;
    GroupBuilder s;
    s.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn, 0x900, 50, false).node(3, S::ReportLsn, 0x100, 0)
        .node(4, S::ReportLsn, 0x100, 0);
    CHECK(run(s, strict).assignments.empty());
}

TEST_CASE("the elected node goes fast_forward -> prepare_promotion -> wait_primary", "[election]") {
    GroupBuilder ff;
    ff.node(1, S::Demoted).dead(5s).node(2, S::FastForward).node(3, S::ReportLsn);
    CHECK(goal_for(run(ff), 2) == S::PreparePromotion);
    GroupBuilder pp;
    pp.node(1, S::Demoted).dead(5s).node(2, S::PreparePromotion).node(3, S::ReportLsn);
    CHECK(goal_for(run(pp), 2) == S::WaitPrimary);
    GroupBuilder moving;
    moving.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn).goal(S::FastForward).node(3, S::ReportLsn);
    CHECK_THAT(run(moving).waiting_reason, Catch::Contains("waiting for node_2"));
}

TEST_CASE("an elected node that fails during its promotion is replaced by a new election", "[election]") {
    GroupBuilder b;
    b.node(1, S::Demoted).dead(5s).node(2, S::PreparePromotion).pg_down().node(3, S::ReportLsn);
    CHECK(goal_for(run(b), 2) == S::ReportLsn);
}

TEST_CASE("after the promotion the other standbys and the old primary follow the new primary", "[election]") {
    GroupBuilder b;
    b.node(1, S::Demoted).node(2, S::WaitPrimary).node(3, S::ReportLsn);
    auto d = run(b);
    CHECK(goal_for(d, 3) == S::Catchingup);
    CHECK(goal_for(d, 1) == S::Catchingup);
}

TEST_CASE("standbys wait in report_lsn until the new primary is writable", "[election]") {
    GroupBuilder b;
    b.node(1, S::Demoted).node(2, S::PreparePromotion).goal(S::WaitPrimary).node(3, S::ReportLsn);
    CHECK_FALSE(goal_for(run(b), 3));
}

TEST_CASE("a standby coming back during an election is frozen too", "[election]") {
    GroupBuilder b;
    b.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn).node(3, S::Secondary);
    CHECK(goal_for(run(b), 3) == S::ReportLsn);
}

TEST_CASE("a quorum secondary that caught up while the primary was on its way to primary is added to the list",
          "[sync]") {
    // node 3 became secondary after the primary's goal primary was assigned (the
    // primary was not converged then, so standby_caught_up could not ask it).
    GroupBuilder b;
    b.node(1, S::Primary).goal_assigned(test_clock().now - 5s).node(2, S::Secondary).goal_assigned(test_clock().now - 6s)
        .node(3, S::Secondary).goal_assigned(test_clock().now - 2s);
    auto d = run(b);
    CHECK(goal_for(d, 1) == S::ApplySettings);
    // Once the primary applied a list after that, nothing more to do.
    GroupBuilder done;
    done.node(1, S::Primary).goal_assigned(test_clock().now - 1s).node(2, S::Secondary).goal_assigned(test_clock().now - 6s)
        .node(3, S::Secondary).goal_assigned(test_clock().now - 2s);
    CHECK_FALSE(goal_for(run(done), 1));
}

// ---- switchover -------------------------------------------------------------------

TEST_CASE("the switchover candidate is promoted only once it holds the old primary's final LSN", "[switchover]") {
    GroupBuilder behind;
    behind.node(1, S::Draining, 0x900).node(2, S::PreparePromotion, 0x800).node(3, S::Secondary, 0x800);
    auto w = run(behind);
    CHECK(w.assignments.empty());
    CHECK_THAT(w.waiting_reason, Catch::Contains("receive WAL up to"));

    GroupBuilder done;
    done.node(1, S::Draining, 0x900).node(2, S::PreparePromotion, 0x900).node(3, S::Secondary, 0x900)
        .node(4, S::Catchingup, 0x100);
    auto d = run(done);
    CHECK(goal_for(d, 2) == S::WaitPrimary);
    CHECK(goal_for(d, 1) == S::Demoted);
    CHECK(goal_for(d, 3) == S::JoinSecondary);
    CHECK(goal_for(d, 4) == S::JoinSecondary);
}

TEST_CASE("a switchover candidate reporting an older timeline waits, and the reason names both timelines",
          "[switchover]") {
    GroupBuilder b;
    b.node(1, S::Draining, 0x900).timeline(2).node(2, S::PreparePromotion, 0x900).timeline(1);
    auto d = run(b);
    CHECK(d.assignments.empty());
    CHECK_THAT(d.waiting_reason, Catch::Contains("0/900 on timeline 2 (it has 0/900 on timeline 1)"));
}

TEST_CASE("the switchover waits while the old primary is still draining", "[switchover]") {
    GroupBuilder b;
    b.node(1, S::Primary, 0x900).goal(S::Draining).node(2, S::PreparePromotion, 0x900);
    auto d = run(b);
    CHECK(d.assignments.empty());
    CHECK_THAT(d.waiting_reason, Catch::Contains("to drain"));
}

TEST_CASE("a switchover candidate that fails before promotion lets the old primary resume", "[switchover]") {
    GroupBuilder b;
    b.node(1, S::Draining, 0x900).node(2, S::PreparePromotion, 0x900).dead(3s);
    auto d = run(b);
    CHECK(goal_for(d, 1) == S::Primary);
    CHECK(goal_for(d, 2) == S::Catchingup);
}

TEST_CASE("a switchover that does not complete within switchover_timeout is abandoned", "[switchover]") {
    GroupBuilder b;
    b.node(1, S::Draining, 0x900).goal_assigned(test_clock().now - 11s).node(2, S::PreparePromotion, 0x800);
    auto d = run(b);
    CHECK(goal_for(d, 1) == S::Primary);
    CHECK(goal_for(d, 2) == S::Catchingup);
}

TEST_CASE("the new primary's followers stream from it after a switchover", "[switchover]") {
    GroupBuilder b;
    b.node(1, S::Demoted).node(2, S::WaitPrimary).node(3, S::JoinSecondary);
    CHECK(goal_for(run(b), 3) == S::Catchingup);
}

TEST_CASE("a primary that dies while draining, before reporting it, is failed over", "[switchover][failover]") {
    GroupBuilder b;
    b.node(1, S::Primary).goal(S::Draining).dead(3s).node(2, S::PreparePromotion).node(3, S::Secondary);
    auto d = run(b);
    CHECK(goal_for(d, 1) == S::Demoted);
    CHECK(goal_for(d, 2) == S::ReportLsn);
    CHECK(goal_for(d, 3) == S::ReportLsn);
}

TEST_CASE("a draining primary whose keeper reports Postgres stopped, before it reports draining, is no failure",
          "[switchover][failover]") {
    // The keeper reports (heartbeat) while pg_ctl stop runs: the postmaster is
    // gone, the edge primary -> draining is not finished yet. It stopped on purpose.
    for (S goal : {S::Draining, S::PrepareMaintenance}) {
        GroupBuilder b;
        b.node(1, S::Primary, 0x900).goal(goal).pg_down().node(2, S::PreparePromotion, 0x900).node(3, S::Secondary);
        auto d = run(b);
        CHECK_FALSE(goal_for(d, 1));
        CHECK_FALSE(goal_for(d, 2));
        CHECK_FALSE(goal_for(d, 3));
        CHECK_THAT(d.waiting_reason, Catch::Contains("to drain"));
    }
}

TEST_CASE("a draining primary whose keeper then dies is failed over", "[switchover][failover]") {
    GroupBuilder b;
    b.node(1, S::Primary, 0x900).goal(S::Draining).pg_down().dead(3s).node(2, S::PreparePromotion, 0x900)
        .node(3, S::Secondary);
    auto d = run(b);
    CHECK(goal_for(d, 1) == S::Demoted);
    CHECK(goal_for(d, 2) == S::ReportLsn);
}

// ---- maintenance ------------------------------------------------------------------

TEST_CASE("a standby enters maintenance only after the primary dropped it from the list", "[maintenance]") {
    GroupBuilder pending;
    pending.node(1, S::Primary).node(2, S::WaitMaintenance).node(3, S::Secondary);
    auto d = run(pending);
    CHECK(goal_for(d, 1) == S::ApplySettings);
    CHECK_FALSE(goal_for(d, 2));

    GroupBuilder applied;
    applied.node(1, S::Primary).goal_assigned(test_clock().now - 500ms).streaming_to(2, 0x800).streaming_to(3, 0x800)
        .node(2, S::WaitMaintenance).goal_assigned(test_clock().now - 2s).node(3, S::Secondary);
    CHECK(goal_for(run(applied), 2) == S::Maintenance);

    GroupBuilder relaxed;
    relaxed.node(1, S::WaitPrimary).node(2, S::WaitMaintenance);
    CHECK(goal_for(run(relaxed), 2) == S::Maintenance);
}

// Found by the simulation (seed 16 with delayed reports): node_2 lagged, a commit was
// acknowledged by node_3 alone under ANY 1 (node_2, node_3), node_3 went into
// maintenance, the primary crashed and node_2 was promoted without that commit.
TEST_CASE("a standby enters maintenance only once the new list holds what it held", "[maintenance][sync]") {
    GroupBuilder lagging;
    lagging.node(1, S::Primary, 0x900).goal_assigned(test_clock().now - 500ms).streaming_to(2, 0x700)
        .streaming_to(3, 0x880)
        .node(2, S::Secondary, 0x700).node(3, S::WaitMaintenance, 0x880).goal_assigned(test_clock().now - 2s);
    auto d = run(lagging);
    CHECK_FALSE(goal_for(d, 3));
    CHECK_THAT(d.waiting_reason, Catch::Contains("maintenance of node_3 waits") && Catch::Contains("0/880"));

    GroupBuilder caught_up;
    caught_up.node(1, S::Primary, 0x900).goal_assigned(test_clock().now - 500ms).streaming_to(2, 0x890)
        .streaming_to(3, 0x880)
        .node(2, S::Secondary, 0x890).node(3, S::WaitMaintenance, 0x880).goal_assigned(test_clock().now - 2s);
    CHECK(goal_for(run(caught_up), 3) == S::Maintenance);
}

TEST_CASE("a primary handing over for maintenance goes to maintenance once the candidate has all WAL", "[maintenance]") {
    GroupBuilder b;
    b.node(1, S::PrepareMaintenance, 0x900).node(2, S::PreparePromotion, 0x900);
    auto d = run(b);
    CHECK(goal_for(d, 1) == S::Maintenance);
    CHECK(goal_for(d, 2) == S::WaitPrimary);
}

TEST_CASE("nodes in maintenance are left alone by the rules", "[maintenance]") {
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::Maintenance).dead(10s).node(3, S::Secondary);
    CHECK(run(b).assignments.empty());
}

TEST_CASE("a primary whose synchronous list vanished before it applied it goes back to wait_primary", "[sync]") {
    GroupBuilder b;  // told primary while node_2 was secondary; node_2 has since gone into maintenance
    b.node(1, S::WaitPrimary).goal(S::Primary).node(2, S::Maintenance);
    CHECK(goal_for(run(b), 1) == S::WaitPrimary);
}

TEST_CASE("maintenance of the only standby that can acknowledge relaxes the primary first", "[maintenance][sync]") {
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::WaitMaintenance).node(3, S::Secondary, 0x3000000, 50, false);
    auto d = run(b);
    CHECK(goal_for(d, 1) == S::WaitPrimary);
    CHECK_FALSE(goal_for(d, 2));
    FormationSettings strict;
    strict.number_sync_standbys = 1;
    auto blocked = run(b, strict);
    CHECK_FALSE(goal_for(blocked, 1));
    CHECK_THAT(blocked.waiting_reason, Catch::Contains("no other standby can acknowledge"));
}

TEST_CASE("an old primary that left maintenance does not count in an election", "[election][maintenance]") {
    // It reports maintenance (it has not streamed since), so it cannot hold acknowledged commits.
    GroupBuilder b;
    b.node(1, S::Demoted).dead(5s).node(2, S::ReportLsn).node(3, S::Maintenance).goal(S::Catchingup);
    auto d = run(b);
    CHECK(goal_for(d, 2) == S::PreparePromotion);
    CHECK_FALSE(goal_for(d, 3));
}

TEST_CASE("a candidate is promoted only once a silent old primary has surely fenced itself", "[election][fencing]") {
    // The old primary may have kept its standbys (and so its fencing clock) until
    // they froze for the election, which was at the latest when the candidate was chosen.
    GroupBuilder early;
    early.node(1, S::Primary).goal(S::Demoted).dead(9s).node(2, S::PreparePromotion).goal_assigned(test_clock().now - 1s)
        .node(3, S::ReportLsn);
    auto w = run(early);
    CHECK_FALSE(goal_for(w, 2));
    CHECK_THAT(w.waiting_reason, Catch::Contains("fences itself"));
    GroupBuilder late;
    late.node(1, S::Primary).goal(S::Demoted).dead(9s).node(2, S::PreparePromotion).goal_assigned(test_clock().now - 2600ms)
        .node(3, S::ReportLsn);
    CHECK(goal_for(run(late), 2) == S::WaitPrimary);
    GroupBuilder stopped;  // its keeper says Postgres is down: no need to wait
    stopped.node(1, S::Primary).goal(S::Demoted).pg_down().node(2, S::PreparePromotion).node(3, S::ReportLsn);
    CHECK(goal_for(run(stopped), 2) == S::WaitPrimary);
}

TEST_CASE("standbys follow the writable node, or the draining primary during a switchover", "[primary]") {
    CHECK(find_primary(GroupBuilder().node(1, S::Secondary).node(2, S::Primary).build()) == NodeId{2});
    CHECK(find_primary(GroupBuilder().node(1, S::Draining).node(2, S::PreparePromotion).build()) == NodeId{1});
    CHECK(find_primary(GroupBuilder().node(1, S::Demoted).node(2, S::PreparePromotion).goal(S::WaitPrimary).build()) ==
          NodeId{2});
    CHECK_FALSE(find_primary(GroupBuilder().node(1, S::Demoted).node(2, S::ReportLsn).build()));
}
