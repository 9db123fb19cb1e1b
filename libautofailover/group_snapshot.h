// What the monitor knows about one group at one instant: the input of every
// decision. Value types only; the extension fills them from its tables via SPI.
#pragma once
#include "libautofailover/no_postgres.h"

#include "libautofailover/lsn.h"
#include "libautofailover/node_state.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace autofailover {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

// Result of the monitor's own probes of the node's Postgres.
enum class Health { Unknown, Bad, Good };
std::string_view to_string(Health health);

using NodeId = std::int64_t;

// One row of the primary's pg_stat_replication as its keeper reported it: a
// standby that streams from it, and how far it has flushed. The only evidence of
// streaming the monitor trusts: a standby's own report could be made up.
struct StreamingStandby {
    NodeId id = 0;
    Lsn flush_lsn = 0;
};

struct NodeSnapshot {
    NodeId id = 0;
    std::string name;
    std::string host;
    int port = 5432;

    NodeState reported_state = NodeState::Init;
    NodeState goal_state = NodeState::Init;
    // When goal_state was last assigned.
    TimePoint goal_assigned_at{};

    // From the keeper's last node_active call.
    std::optional<TimePoint> last_report;  // empty: the keeper never reported
    bool pg_is_running = false;
    int timeline = 0;
    Lsn lsn = 0;             // primary: current write LSN; standby: last received LSN
    std::string sync_state;  // as pg_stat_replication.sync_state sees this node ("sync", "quorum", "async", "")
    // While it runs as a primary: the standbys its keeper saw streaming at its last report.
    std::vector<StreamingStandby> streaming_standbys;

    // From the monitor's probes.
    Health health = Health::Unknown;
    std::optional<TimePoint> last_health_check;

    // When this node's keeper last reported that its pre_promote hook vetoed a
    // promotion (autofailover.report_promotion_veto); empty: never.
    std::optional<TimePoint> promotion_vetoed_at;

    int candidate_priority = 50;  // 0..100, 0 = never promoted
    bool replication_quorum = true;
};

struct GroupSnapshot {
    std::string formation = "default";
    int group_id = 0;
    std::vector<NodeSnapshot> nodes;
    // Set while standbys of this group were adopted by a new monitor but its primary
    // was not (docs/monitor-ha.md, M6): no election before this instant, and the
    // promotion after it waits for the never-adopted primary to have fenced itself.
    std::optional<TimePoint> adoption_deadline;

    const NodeSnapshot* find(NodeId id) const;
};

// Time as the monitor sees it. Time is always a parameter of the pure core.
struct MonitorClock {
    TimePoint now{};
    TimePoint monitor_started{};
};

}  // namespace autofailover
