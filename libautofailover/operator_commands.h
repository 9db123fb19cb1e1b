// Operator commands planned by the pure core. Each either returns the goal
// states to assign, or throws OperatorError with a message a DBA can act on
// ("cannot switch over: no healthy standby with candidate_priority > 0").
#pragma once
#include "libautofailover/no_postgres.h"

#include "libautofailover/decide.h"

#include <stdexcept>
#include <string>

namespace autofailover {

class OperatorError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Planned role change to the best candidate (or to `target` when given).
Decision plan_switchover(const GroupSnapshot& group, const FormationSettings& settings, const MonitorClock& clock,
                         std::optional<NodeId> target = std::nullopt);
// Operator-forced failover when the primary is gone. Refuses (OperatorError)
// when promoting could lose acknowledged commits unless accept_data_loss is set,
// and then says so in the reason.
Decision plan_failover(const GroupSnapshot& group, const FormationSettings& settings, const MonitorClock& clock,
                       bool accept_data_loss = false);
Decision plan_start_maintenance(const GroupSnapshot& group, const FormationSettings& settings,
                                const MonitorClock& clock, NodeId node);
Decision plan_stop_maintenance(const GroupSnapshot& group, const FormationSettings& settings,
                               const MonitorClock& clock, NodeId node);
// After candidate_priority / replication_quorum / number_sync_standbys changed
// (`group` and `settings` already hold the new values): the primary re-applies
// synchronous_standby_names. Throws when the change would leave fewer quorum
// standbys than number_sync_standbys needs.
Decision plan_apply_settings(const GroupSnapshot& group, const FormationSettings& settings,
                             const MonitorClock& clock, const std::string& what_changed);
Decision plan_remove_node(const GroupSnapshot& group, const FormationSettings& settings, const MonitorClock& clock,
                          NodeId node);

}  // namespace autofailover
