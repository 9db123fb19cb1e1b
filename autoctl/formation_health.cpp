#include "autoctl/formation_health.h"

#include <fmt/format.h>

#include <map>

namespace autoctl {

namespace {

bool is_settled(const NodeRow& n) { return n.reported_state == n.goal_state; }

// Primary states that count as "the group's primary is healthy". wait_primary
// only counts when no other node could be a synchronous standby (then the
// monitor has nothing to wait for); otherwise it means a standby is missing.
bool is_healthy_primary(const NodeRow& n, const std::vector<const NodeRow*>& group) {
    if (n.goal_state == "primary") return true;
    if (n.goal_state == "single") return group.size() == 1;
    if (n.goal_state == "wait_primary") {
        for (const NodeRow* other : group)
            if (other != &n && other->replication_quorum && other->goal_state != "maintenance") return false;
        return true;
    }
    return false;
}

}  // namespace

HealthVerdict assess_formation(const std::vector<NodeRow>& nodes) {
    if (nodes.empty()) return {false, "no node is registered in this formation"};

    std::map<int, std::vector<const NodeRow*>> groups;
    for (const NodeRow& n : nodes) {
        // A node that finished leaving no longer belongs to the formation.
        if (n.reported_state == "dropped" && n.goal_state == "dropped") continue;
        groups[n.group_id].push_back(&n);
    }
    if (groups.empty()) return {false, "every node of this formation was dropped"};

    for (const auto& [group_id, members] : groups) {
        int primaries = 0;
        for (const NodeRow* n : members) {
            if (!n->keeper_reporting)
                return {false, fmt::format("keeper of {} is not reporting", n->name)};
            if (!is_settled(*n))
                return {false, fmt::format("{} is {}, going to {}", n->name, n->reported_state, n->goal_state)};
            // The monitor's probes are how it notices a dead node without its keeper: a node
            // they cannot reach is not healthy yet, even if its keeper reports (a firewall
            // open one way only would make failover detection blind).
            if (n->health == "bad" && n->goal_state != "maintenance")
                return {false, fmt::format("{} does not answer the monitor's health checks (yet)", n->name)};
            if (is_healthy_primary(*n, members)) {
                ++primaries;
            } else if (n->goal_state != "secondary" && n->goal_state != "maintenance") {
                return {false, fmt::format("{} is in {}", n->name, n->goal_state)};
            }
        }
        if (primaries != 1)
            return {false, fmt::format("group {} has {} healthy primaries", group_id, primaries)};
    }
    return {true, ""};
}

}  // namespace autoctl
