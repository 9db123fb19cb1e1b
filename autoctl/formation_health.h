// When is a formation "back to health"? Every --wait of autoctl ends on this
// predicate: each group has exactly one primary and all other nodes are
// secondary (or in maintenance), every node has reached its goal state, every
// keeper is reporting and the monitor's health checks reach every node outside
// maintenance.
#pragma once

#include "autoctl/monitor_client.h"

#include <string>
#include <vector>

namespace autoctl {

struct HealthVerdict {
    bool healthy = false;
    std::string waiting_for;  // empty when healthy: what is still missing, for progress lines
};

HealthVerdict assess_formation(const std::vector<NodeRow>& nodes);

}  // namespace autoctl
