// Builds group snapshots for the example tests: a clock at a fixed instant, and
// nodes whose keepers reported a moment ago unless a test says otherwise.
#pragma once

#include "libautofailover/decide.h"
#include "libautofailover/group_snapshot.h"
#include "libautofailover/settings.h"

#include <chrono>
#include <optional>
#include <string>

namespace autofailover::testing {

inline MonitorClock test_clock() {
    MonitorClock clock;
    clock.monitor_started = TimePoint{} + std::chrono::hours(1);
    clock.now = clock.monitor_started + std::chrono::minutes(10);
    return clock;
}

class GroupBuilder {
public:
    explicit GroupBuilder(MonitorClock clock = test_clock()) : clock_(clock) {}

    // A node converged to `state`, healthy, reporting 100 ms ago.
    GroupBuilder& node(NodeId id, NodeState state, Lsn lsn = 0x3000000, int priority = 50, bool quorum = true) {
        NodeSnapshot n;
        n.id = id;
        n.name = "node_" + std::to_string(id);
        n.reported_state = state;
        n.goal_state = state;
        n.goal_assigned_at = clock_.now - std::chrono::seconds(1);
        n.last_report = clock_.now - std::chrono::milliseconds(100);
        n.pg_is_running = state != NodeState::Demoted && state != NodeState::Draining &&
                          state != NodeState::DemoteTimeout && state != NodeState::Maintenance;
        n.timeline = 1;
        n.lsn = lsn;
        n.health = Health::Good;
        n.last_health_check = clock_.now - std::chrono::milliseconds(200);
        n.candidate_priority = priority;
        n.replication_quorum = quorum;
        group_.nodes.push_back(n);
        return *this;
    }
    GroupBuilder& goal(NodeState goal) {
        group_.nodes.back().goal_state = goal;
        return *this;
    }
    GroupBuilder& timeline(int tl) {
        group_.nodes.back().timeline = tl;
        return *this;
    }
    // Keeper silent for `silence`, probes failing since then.
    GroupBuilder& dead(std::chrono::milliseconds silence) {
        auto& n = group_.nodes.back();
        n.last_report = clock_.now - silence;
        n.health = Health::Bad;
        n.last_health_check = clock_.now - std::chrono::milliseconds(10);
        return *this;
    }
    // Keeper silent for `silence` but Postgres answers the probes.
    GroupBuilder& keeper_silent(std::chrono::milliseconds silence) {
        auto& n = group_.nodes.back();
        n.last_report = clock_.now - silence;
        n.health = Health::Good;
        n.last_health_check = clock_.now - std::chrono::milliseconds(10);
        return *this;
    }
    // The last node (a primary) reports `standby` streaming from it, flushed up to `flush`.
    GroupBuilder& streaming_to(NodeId standby, Lsn flush) {
        group_.nodes.back().streaming_standbys.push_back(StreamingStandby{standby, flush});
        return *this;
    }
    GroupBuilder& pg_down() {
        group_.nodes.back().pg_is_running = false;
        return *this;
    }
    GroupBuilder& goal_assigned(TimePoint at) {
        group_.nodes.back().goal_assigned_at = at;
        return *this;
    }

    GroupSnapshot build() const { return group_; }
    const MonitorClock& clock() const { return clock_; }

private:
    MonitorClock clock_;
    GroupSnapshot group_;
};

inline std::optional<NodeState> goal_for(const Decision& decision, NodeId id) {
    std::optional<NodeState> goal;
    for (const auto& a : decision.assignments)
        if (a.node_id == id) goal = a.goal;
    return goal;
}

inline std::string describe(const Decision& decision) {
    std::string text;
    for (const auto& a : decision.assignments)
        text += "node_" + std::to_string(a.node_id) + " -> " + std::string(to_string(a.goal)) + ": " + a.reason + "\n";
    if (!decision.waiting_reason.empty()) text += "waiting: " + decision.waiting_reason + "\n";
    return text;
}

// decide() on the builder's group at the builder's clock.
inline Decision run(const GroupBuilder& b, const FormationSettings& settings = FormationSettings{}) {
    return decide(b.build(), settings, b.clock());
}

// Apply a decision to the snapshot as the monitor stores it.
inline void apply(GroupSnapshot& group, const Decision& decision, TimePoint now) {
    for (const auto& a : decision.assignments)
        for (auto& n : group.nodes)
            if (n.id == a.node_id) {
                n.goal_state = a.goal;
                n.goal_assigned_at = now;
            }
}

}  // namespace autofailover::testing
