#include "libautofailover/what_if.h"

#include "libautofailover/decision_context.h"

#include <algorithm>

namespace autofailover {

namespace {

bool writable_goal(NodeState s) {
    return s == NodeState::Single || s == NodeState::WaitPrimary || s == NodeState::Primary ||
           s == NodeState::JoinPrimary || s == NodeState::ApplySettings;
}

bool postgres_runs_in(NodeState s) {
    return s != NodeState::Draining && s != NodeState::Demoted && s != NodeState::DemoteTimeout &&
           s != NodeState::Maintenance && s != NodeState::Dropped;
}

NodeSnapshot* find_mutable(GroupSnapshot& group, NodeId id) {
    for (auto& node : group.nodes)
        if (node.id == id) return &node;
    return nullptr;
}

// Returns whether a goal changed.
bool apply(GroupSnapshot& group, const Decision& decision, const MonitorClock& clock) {
    bool changed = false;
    for (const auto& a : decision.assignments) {
        NodeSnapshot* node = find_mutable(group, a.node_id);
        if (node == nullptr || node->goal_state == a.goal) continue;
        node->goal_state = a.goal;
        node->goal_assigned_at = clock.now;
        changed = true;
    }
    return changed;
}

// Every reporting keeper reaches its goal; returns whether any report changed.
bool keepers_report(GroupSnapshot& group, const FormationSettings& settings, const MonitorClock& clock) {
    bool changed = false;
    Lsn most_advanced = 0;
    for (const auto& node : group.nodes) most_advanced = std::max(most_advanced, node.lsn);
    std::vector<NodeId> reporting;
    for (const auto& node : group.nodes)
        if (keeper_is_reporting(node, settings, clock)) reporting.push_back(node.id);
    for (NodeId id : reporting) {
        NodeSnapshot& node = *find_mutable(group, id);
        if (node.reported_state == node.goal_state) continue;
        node.reported_state = node.goal_state;
        node.pg_is_running = postgres_runs_in(node.goal_state);
        node.last_report = clock.now;
        changed = true;
        if (node.goal_state == NodeState::FastForward) node.lsn = std::max(node.lsn, most_advanced);
        if (node.goal_state == NodeState::Draining || node.goal_state == NodeState::PrepareMaintenance) {
            // A clean shutdown sends every WAL record to the standbys connected then.
            for (const auto& streaming : node.streaming_standbys)
                if (NodeSnapshot* standby = find_mutable(group, streaming.id);
                    standby != nullptr && standby->timeline == node.timeline)
                    standby->lsn = std::max(standby->lsn, node.lsn);
        }
    }
    return changed;
}

}  // namespace

WhatIf what_if(const GroupSnapshot& snapshot, const FormationSettings& settings, const MonitorClock& start,
               const Decision& plan, int max_rounds, std::chrono::milliseconds max_wait,
               std::chrono::milliseconds tick) {
    WhatIf out;
    out.plan = plan;
    MonitorClock clock = start;
    GroupSnapshot group = snapshot;
    const std::optional<NodeId> old_primary = find_primary(snapshot);
    apply(group, plan, clock);
    out.waiting = plan.waiting_reason;
    auto old_primary_writable = [&] {
        const NodeSnapshot* node = old_primary ? group.find(*old_primary) : nullptr;
        return node != nullptr && writable_goal(node->goal_state);
    };
    const bool handing_over = old_primary && !old_primary_writable();
    for (;;) {
        for (const auto& node : group.nodes)
            if (writable_goal(node.goal_state) && node.id != old_primary) {
                out.promoted = node.id;
                out.waiting.clear();
                return out;
            }
        if (out.rounds >= max_rounds) {
            if (out.waiting.empty()) out.waiting = "no primary after " + std::to_string(max_rounds) + " decisions";
            return out;
        }
        const bool reported = keepers_report(group, settings, clock);
        const Decision next = decide(group, settings, clock);
        out.rounds++;
        out.waiting = next.waiting_reason;
        const bool assigned = apply(group, next, clock);
        if (handing_over && old_primary_writable()) {
            // The core gave the old primary its role back: the operation would be abandoned.
            for (const auto& a : next.assignments)
                if (a.node_id == *old_primary) out.waiting = "abandoned: " + a.reason;
            return out;
        }
        if (!reported && !assigned && !out.waiting.empty() && out.waited < max_wait) {
            // Only time can move this formation on: let it pass, keepers that report go on reporting.
            out.rounds--;
            if (out.first_wait.empty()) out.first_wait = out.waiting;
            const TimePoint before = clock.now;
            clock.now += tick;
            out.waited += tick;
            for (auto& node : group.nodes)
                if (keeper_is_reporting(node, settings, MonitorClock{before, clock.monitor_started}))
                    node.last_report = clock.now;
            continue;
        }
        if (!reported && !assigned) {
            if (out.waiting.empty()) {
                const NodeSnapshot* back = old_primary ? group.find(*old_primary) : nullptr;
                out.waiting = back != nullptr && writable_goal(back->goal_state)
                                  ? detail::label(*back) + " stays the primary"
                                  : "nothing moves: no node would be promoted";
            }
            return out;
        }
    }
}

}  // namespace autofailover
