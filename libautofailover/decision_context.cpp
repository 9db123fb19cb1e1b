#include "libautofailover/decision_context.h"

#include <algorithm>

namespace autofailover::detail {

DecisionContext::DecisionContext(const GroupSnapshot& group, const FormationSettings& settings,
                                 const MonitorClock& clock)
    : group_(group), settings_(settings), clock_(clock) {}

bool DecisionContext::assign(NodeId node_id, NodeState goal, std::string reason) {
    if (assigned_.count(node_id)) {
        decision_.shadowed.push_back(Assignment{node_id, goal, std::move(reason), rule_});
        return false;
    }
    for (auto& node : group_.nodes) {
        if (node.id != node_id) continue;
        if (node.goal_state == goal) return false;
        node.goal_state = goal;
        node.goal_assigned_at = clock_.now;
        assigned_.insert(node_id);
        decision_.assignments.push_back(Assignment{node_id, goal, std::move(reason), rule_});
        return true;
    }
    return false;
}

void DecisionContext::wait(const std::string& reason) {
    if (reason.empty()) return;
    if (decision_.waiting_reason.find(reason) != std::string::npos) return;
    if (!decision_.waiting_reason.empty()) decision_.waiting_reason += "; ";
    decision_.waiting_reason += reason;
}

Clock::duration DecisionContext::silence(const NodeSnapshot& node) const {
    if (!node.last_report) return Clock::duration::max();
    return clock_.now - *node.last_report;
}

std::vector<const NodeSnapshot*> DecisionContext::active_nodes() const {
    std::vector<const NodeSnapshot*> nodes;
    for (const auto& node : group_.nodes)
        if (node.goal_state != NodeState::Dropped) nodes.push_back(&node);
    return nodes;
}

void DecisionContext::run_rule(const char* name, void (*rule)(DecisionContext&)) {
    rule_ = name;
    rule(*this);
    rule_ = "";
}

const NodeSnapshot* writable_goal_node(const std::vector<NodeSnapshot>& nodes) {
    const NodeSnapshot* found = nullptr;
    for (const auto& node : nodes) {
        if (!is_writable(node.goal_state)) continue;
        // Never expected to be more than one; prefer the one that acts as a primary.
        if (!found || (is_writable(node.reported_state) && !is_writable(found->reported_state))) found = &node;
    }
    return found;
}

const NodeSnapshot* DecisionContext::writable_goal_node() const { return detail::writable_goal_node(group_.nodes); }

bool surely_fenced(const DecisionContext& ctx, const NodeSnapshot& primary) {
    const auto& t = ctx.settings().timeouts;
    const bool keeper_says_down = primary.last_report && !primary.pg_is_running;
    return keeper_says_down || ctx.silence(primary) >= t.network_partition_timeout + t.fencing_margin;
}

const NodeSnapshot* DecisionContext::handing_over_node() const {
    for (const auto& node : group_.nodes)
        if (node.goal_state == NodeState::Draining || node.goal_state == NodeState::PrepareMaintenance) return &node;
    return nullptr;
}

int DecisionContext::sync_count() const { return std::max(1, settings_.number_sync_standbys); }

std::string label(const NodeSnapshot& node) {
    return node.name.empty() ? "node_" + std::to_string(node.id) : node.name;
}

bool converged(const NodeSnapshot& node, NodeState state) {
    return node.reported_state == state && node.goal_state == state;
}

bool in_promotion(NodeState goal) {
    return goal == NodeState::ReportLsn || goal == NodeState::FastForward || goal == NodeState::PreparePromotion ||
           goal == NodeState::StopReplication;
}

bool ran_with_sync_replication(const NodeSnapshot& primary) {
    const auto sync_on = [](NodeState s) {
        return s == NodeState::Primary || s == NodeState::ApplySettings || s == NodeState::JoinPrimary;
    };
    const bool goal_keeps_sync = sync_on(primary.goal_state) || primary.goal_state == NodeState::Draining ||
                                 primary.goal_state == NodeState::PrepareMaintenance;
    return sync_on(primary.reported_state) && goal_keeps_sync;
}

bool is_standby_goal(NodeState goal) {
    return goal == NodeState::Catchingup || goal == NodeState::Secondary || goal == NodeState::JoinSecondary ||
           goal == NodeState::WaitMaintenance;
}

bool reports_streaming_standby(const NodeSnapshot& node) {
    const NodeState s = node.reported_state;
    return is_standby_goal(s) || in_promotion(s);
}

bool may_be_in_sync_list(const NodeSnapshot& node) {
    if (!node.replication_quorum) return false;
    // A node that has not reported as a streaming standby since it was cloned,
    // left maintenance or was demoted has not been listed since then.
    if (!reports_streaming_standby(node)) return false;
    return is_standby_goal(node.goal_state) || in_promotion(node.goal_state);
}

std::optional<Lsn> confirmed_flush_lsn(const NodeSnapshot& primary, NodeId standby) {
    for (const auto& s : primary.streaming_standbys)
        if (s.id == standby) return s.flush_lsn;
    return std::nullopt;
}

bool lsn_precedes(const NodeSnapshot& a, const NodeSnapshot& b) {
    if (a.timeline != b.timeline) return a.timeline < b.timeline;
    return a.lsn < b.lsn;
}

}  // namespace autofailover::detail
