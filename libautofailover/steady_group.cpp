// group_is_steady(): why each condition is needed, rule by rule of decide()
// (decide.cpp kRules). The free inputs — what a heartbeat may change while the
// cache answers — are every node's last_report (its age: keeper_is_reporting,
// silence), lsn, the primary's streaming flush LSNs, last_health_check and the
// clock (so every age: goal_assigned_at, veto, adoption deadline, startup grace).
//
//  1. 1..8 nodes, distinct ids: the shortcut is meant for ordinary groups;
//     duplicate ids would make find() and the sync list ambiguous.
//  2. Exactly one node with a writable goal, Single or Primary, converged to it:
//     wait_primary/apply_settings/join_primary have rules that fire on the
//     primary's report (enable_sync_replication, apply_settings_done,
//     legacy_join_primary, sync_list_vanished); two writable goals is a state no
//     rule leaves alone.
//  3. Every other node converged to Secondary: catchingup compares LSNs with
//     enable_sync_wal_threshold (standby_caught_up), demoted rejoins on keeper
//     silence (old_primary_rejoins), wait_maintenance compares flush LSNs
//     (list_lacks_what_leaving_holds), report_lsn / candidates / draining run
//     elections and switchovers that read LSNs, silence and goal_assigned_at ages
//     (switchover_timeout, fencing waits), dropped nodes change active_nodes().
//  4. A Single runs alone (single_primary_gets_a_standby); a Primary has at least
//     one quorum secondary (relax_sync_replication, primary_alone_becomes_single).
//     A quorum secondary with health good stays "healthy" whatever its silence.
//  5. Every node: last_report present, pg_is_running, health good: then
//     node_is_unhealthy() is false whatever the ages of last_report and
//     last_health_check (it needs pg down or health bad), and primary_suspected()
//     is false (it needs health bad): no failover, no early freeze, no
//     unhealthy_secondary_stops_being_candidate can start on a heartbeat.
//  6. No promotion veto: veto_stands / vetoed_this_promotion compare times.
//  7. No adoption deadline: lone_node_becomes_single and the election compare the
//     clock with it.
//  8. Past the startup grace: only rules behind health bad read it today, kept so
//     that a rule reading it later cannot flip while the cache answers.
//  9. No quorum secondary whose goal is newer than the primary's
//     (secondary_missing_from_list compares goal_assigned_at values: only their
//     order matters, and it changes only with a goal, which invalidates the cache).
// 10. Every keeper is reporting now: decide() then has no waiting_reason at all.
// 11. decide() itself assigns nothing, shadows nothing and waits for nothing now.
//
// Not needed: timeline, sync_state, the streaming ids and their flush LSNs are
// read only by rules for catchingup, wait_maintenance, elections and handovers
// (excluded by 3); synchronous_standby_names() reads goals, replication_quorum,
// candidate_priority and number_sync_standbys only.
#include "libautofailover/steady_group.h"

#include "libautofailover/decide.h"

#include <set>

namespace autofailover {

namespace {

constexpr std::size_t kMaxSteadyNodes = 8;

bool node_is_sound(const NodeSnapshot& node) {
    return node.last_report && node.pg_is_running && node.health == Health::Good && !node.promotion_vetoed_at;
}

}  // namespace

bool group_is_steady(const GroupSnapshot& group, const FormationSettings& settings, const MonitorClock& clock) {
    const auto& nodes = group.nodes;
    if (nodes.empty() || nodes.size() > kMaxSteadyNodes) return false;
    if (group.adoption_deadline) return false;
    if (!(clock.now - clock.monitor_started > settings.timeouts.startup_grace_period)) return false;

    std::set<NodeId> ids;
    const NodeSnapshot* primary = nullptr;
    for (const auto& node : nodes) {
        if (!ids.insert(node.id).second) return false;
        if (!node_is_sound(node)) return false;
        if (!keeper_is_reporting(node, settings, clock)) return false;
        if (node.goal_state == NodeState::Single || node.goal_state == NodeState::Primary) {
            if (primary || node.reported_state != node.goal_state) return false;
            primary = &node;
        } else if (node.goal_state != NodeState::Secondary || node.reported_state != NodeState::Secondary) {
            return false;
        }
    }
    if (!primary) return false;

    if (primary->goal_state == NodeState::Single) {
        if (nodes.size() != 1) return false;
    } else {
        bool quorum_secondary = false;
        for (const auto& node : nodes) {
            if (node.id == primary->id || !node.replication_quorum) continue;
            if (node.goal_assigned_at > primary->goal_assigned_at) return false;
            quorum_secondary = true;
        }
        if (!quorum_secondary) return false;
    }

    const Decision decision = decide(group, settings, clock);
    return decision.assignments.empty() && decision.shadowed.empty() && decision.waiting_reason.empty();
}

}  // namespace autofailover
