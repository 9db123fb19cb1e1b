// state.json: what the keeper must remember across crashes and reboots. It is
// re-written (atomically) after every transition and monitor contact.
#pragma once

#include "libautofailover/group_snapshot.h"
#include "libautofailover/node_state.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace autofailover::keeper {

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
};

std::string state_to_json(const KeeperState& state);
// Throws std::runtime_error on malformed content or unknown state names.
KeeperState state_from_json(const std::string& text);

}  // namespace autofailover::keeper
