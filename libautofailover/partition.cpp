#include "libautofailover/partition.h"

namespace autofailover {

// A missing monitor contact means the keeper never reached the monitor since it
// was created: it cannot have been told it is a primary with standbys, so it does
// not fence on that ground. A missing standby contact counts as "infinitely old":
// a primary that never saw a standby stream has no one on its side of a partition.
bool primary_is_partitioned(const PartitionView& view, std::chrono::milliseconds network_partition_timeout) {
    if (!view.has_standbys) return false;  // nobody could be promoted in its place
    if (!view.last_monitor_contact) return false;
    const auto too_old = [&](const std::optional<TimePoint>& contact) {
        return !contact || view.now - *contact > network_partition_timeout;
    };
    return too_old(view.last_monitor_contact) && too_old(view.last_standby_contact);
}

}  // namespace autofailover
