// The monitor's decision function: given a group snapshot, the formation
// settings and the time, which goal states change and why. Pure: no I/O, no
// clock, deterministic. The extension calls it after every keeper report,
// every probe round and every operator command, and stores the assignments.
#pragma once
#include "libautofailover/no_postgres.h"

#include "libautofailover/group_snapshot.h"
#include "libautofailover/settings.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace autofailover {

struct Assignment {
    NodeId node_id = 0;
    NodeState goal = NodeState::Init;
    std::string reason;  // one human-readable sentence, stored in the events table
    std::string rule;    // the rule of decide() that made it (docs/fsm.md, "Rules"); logged by the monitor
};

struct Decision {
    std::vector<Assignment> assignments;
    // When the group needs something (a failover, a state change) that the rules
    // do not allow yet, why: "failover waits: only 1 of 2 quorum standbys reported
    // their LSN". Empty when nothing waits. Shown by current_state / logs.
    std::string waiting_reason;
    // Later assignments to a node that a rule of the same pass had already assigned: not applied (the first
    // wins), kept so that tests can tell that no rule was overridden.
    std::vector<Assignment> shadowed;
};

// Health as the rules use it (probes, keeper silence, startup grace).
bool keeper_is_reporting(const NodeSnapshot& node, const FormationSettings& settings, const MonitorClock& clock);
bool node_is_unhealthy(const NodeSnapshot& node, const FormationSettings& settings, const MonitorClock& clock);

// The group-wide step: apply every rule once to the snapshot.
// The names of decide()'s rules in the order it runs them (Assignment::rule; docs/fsm.md, "Rules").
std::vector<std::string_view> decide_rule_names();

Decision decide(const GroupSnapshot& group, const FormationSettings& settings, const MonitorClock& clock);

// Goal state of a node registering into `group` (which does not contain it yet).
Assignment initial_assignment(const GroupSnapshot& group, NodeId new_node_id, int candidate_priority);

// Goal state of a running node that a new, empty monitor adopts (docs/monitor-ha.md,
// M6): `reported` is the state its keeper is in, `group` the nodes adopted so far
// (without it). A primary stays the primary it is; a standby becomes catchingup (it
// is a secondary only once the primary reports it streaming). Throws OperatorError
// with the reason when the claim cannot be accepted: a second primary, a timeline
// older than an adopted standby's, or a state in the middle of a transition.
Assignment adoption_assignment(const GroupSnapshot& group, NodeId node_id, NodeState reported, int timeline);

// The node standbys must follow (current or being-promoted primary), if any.
std::optional<NodeId> find_primary(const GroupSnapshot& group);

// For a node in fast_forward: the most advanced standby it fetches WAL from.
std::optional<NodeId> choose_fast_forward_source(const GroupSnapshot& group, NodeId candidate);

}  // namespace autofailover
