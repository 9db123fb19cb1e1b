// The keeper-side fencing rule: a primary that can reach neither the monitor
// nor any standby must stop taking writes before the monitor may promote.
#pragma once
#include "libautofailover/no_postgres.h"

#include "libautofailover/group_snapshot.h"

#include <chrono>
#include <optional>

namespace autofailover {

struct PartitionView {
    TimePoint now{};
    std::optional<TimePoint> last_monitor_contact;
    std::optional<TimePoint> last_standby_contact;  // a standby streaming in pg_stat_replication
    bool has_standbys = false;                      // the monitor listed other nodes in the group
};

// True when the keeper must fence its primary now.
bool primary_is_partitioned(const PartitionView& view, std::chrono::milliseconds network_partition_timeout);

}  // namespace autofailover
