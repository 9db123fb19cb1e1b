// state.json: what the keeper must remember across crashes and reboots. It is
// re-written (atomically) after every transition and monitor contact.
#pragma once

#include "libautofailover/group_snapshot.h"
#include "libautofailover/node_state.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace autofailover::keeper {

// The formation's client access as the monitor last gave it (autoctl set formation allow-clients,
// docs/clients.md): kept in state.json so a keeper restarted while the monitor is away writes the
// same pg_hba.conf lines. Each value is checked again before it reaches pg_hba.conf.
struct FormationClients {
    std::int64_t version = 0;  // 0: never set on the monitor
    std::vector<std::string> networks;
    std::string client_database = "all";
    std::string client_role = "all";
};

struct KeeperState {
    std::int64_t node_id = 0;  // 0: not registered
    int group_id = 0;
    NodeState current_state = NodeState::Init;  // the last state this node reached
    NodeState goal_state = NodeState::Init;     // the last goal the monitor assigned
    std::optional<TimePoint> last_monitor_contact;
    std::optional<TimePoint> last_standby_contact;  // a standby streamed from this primary
    // From node_active; persisted so a keeper restarted during a partition fences on time.
    std::chrono::milliseconds network_partition_timeout{1500};
    // Set when this node fenced itself (it went to demote_timeout on its own).
    std::optional<TimePoint> fenced_at;
    bool dropped = false;
    // A rewound data directory could not follow the primary (WAL gone, history
    // diverged): the next rejoin copies a fresh base backup instead of rewinding
    // again, also after a keeper crash. Cleared once a base backup is in place.
    bool rejoin_needs_base_backup = false;
    // As the monitor last assigned them (node_active): what `autoctl enable monitor`
    // hands a new monitor that adopts this node (docs/monitor-ha.md, M6).
    int candidate_priority = 50;
    bool replication_quorum = true;
    FormationClients formation_clients;
};

std::string state_to_json(const KeeperState& state);
// Throws std::runtime_error on malformed content or unknown state names.
KeeperState state_from_json(const std::string& text);

}  // namespace autofailover::keeper
